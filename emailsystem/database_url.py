"""DATABASE_URL to Django's DATABASES entry, libpq's multi-host form included.

dj-database-url reads one host per URL; a primary and its standbys are named in one URL the way
libpq's own connection strings name them (docs/deploy/database-failover.md):

    postgres://user@db1:5432,db2:5432/emailsystem?target_session_attrs=read-write

libpq takes the list as `host=db1,db2 port=5432,5432` and tries the hosts in turn, keeping the
first that accepts writes. So this module hands dj-database-url the URL with one stand-in host,
and puts the lists in HOST and PORT, which Django's PostgreSQL backend passes to libpq as they are.
It imports nothing of Django: scripts/devstack.py, which never does, reads the URL with it too.
"""

from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import dj_database_url

POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}
# libpq's own default, written out so that every host of the list has its port.
DEFAULT_PORT = "5432"
# What dj-database-url parses in place of the host list; never reaches a connection.
STAND_IN_HOST = "multi-host.invalid"
# libpq's target_session_attrs that keep only a server accepting writes ("primary" needs libpq 14).
WRITABLE_SESSION_ATTRS = {"read-write", "primary"}


class DatabaseUrlError(ValueError):
    """DATABASE_URL cannot be read; the message names the variable and what is wrong."""


def database_config(url: str, **options: Any) -> dict[str, Any]:
    """DATABASES["default"] for `url`; `options` are dj_database_url.parse's (conn_max_age ...).

    Raises DatabaseUrlError naming DATABASE_URL when the URL cannot be read; the message never
    repeats the URL, which may hold a password.
    """
    try:
        parts = urlsplit(url)
    except ValueError as error:  # an unbalanced "[" of an IPv6 address
        raise DatabaseUrlError(f"DATABASE_URL is not a URL: {error}") from None
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if "," not in hostlist:
        return _parse(url, **options)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise DatabaseUrlError(f"DATABASE_URL names several hosts, which only PostgreSQL reads (not {parts.scheme!r})")
    hosts, ports = zip(*(_host_port(item) for item in hostlist.split(",")), strict=True)
    single = urlunsplit(parts._replace(netloc=f"{userinfo}{at}{STAND_IN_HOST}"))
    config = _parse(single, **options)
    if config.get("OPTIONS", {}).get("target_session_attrs") not in WRITABLE_SESSION_ATTRS:
        raise DatabaseUrlError(
            "DATABASE_URL names several hosts but not target_session_attrs=read-write: every process "
            "writes, and without it libpq may connect to a standby"
        )
    config["HOST"] = ",".join(hosts)
    config["PORT"] = ",".join(ports)
    return config


def _parse(url: str, **options: Any) -> dict[str, Any]:
    try:
        return dict(dj_database_url.parse(url, **options))
    except ValueError as error:  # dj_database_url.ParseError is one
        raise DatabaseUrlError(f"DATABASE_URL is not a database URL dj-database-url can read: {error}") from None


def _host_port(item: str) -> tuple[str, str]:
    """("db1", "5432") from "db1:5432", ("::1", "5432") from "[::1]", with libpq's default port."""
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise DatabaseUrlError(f"DATABASE_URL has an unreadable host {item!r}")
        port = rest[1:]
    else:
        host, _colon, port = item.partition(":")
    port = port or DEFAULT_PORT
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DatabaseUrlError(f"DATABASE_URL has an unreadable host {item!r}")
    return unquote(host), port
