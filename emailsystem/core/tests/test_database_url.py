"""A primary and its standbys: DATABASE_URL in libpq's multi-host form reaches Django (and libpq) as
host and port lists, and a write that meets a server which only reads is a 503."""

import os
import subprocess
import sys

import dj_database_url
import pytest
from django.db import connection

from emailsystem.database_url import DatabaseUrlError, database_config
from emailsystem.emails.models import SentEmail

FAILOVER_URL = "postgres://app:s3cret@db1:5432,db2:5433/emails?target_session_attrs=read-write&connect_timeout=3"


def test_a_single_host_url_reads_as_dj_database_url_reads_it():
    for url in ("postgres://app:pw@db:6432/emails?sslmode=require", "sqlite:///db.sqlite3", "postgres://u@[::1]/db"):
        assert database_config(url, conn_max_age=60) == dict(dj_database_url.parse(url, conn_max_age=60))


def test_several_hosts_become_libpq_host_and_port_lists():
    config = database_config(FAILOVER_URL, conn_max_age=60, conn_health_checks=True)

    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"]) == ("db1,db2", "5432,5433")
    assert (config["USER"], config["PASSWORD"], config["NAME"]) == ("app", "s3cret", "emails")
    assert config["OPTIONS"] == {"target_session_attrs": "read-write", "connect_timeout": 3}
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (60, True)


def test_a_host_without_a_port_gets_libpqs_default_and_ipv6_hosts_keep_their_address():
    config = database_config("postgresql://u@db1,[::1]:5433,[fe80::2]/emails?target_session_attrs=primary")

    assert (config["HOST"], config["PORT"]) == ("db1,::1,fe80::2", "5432,5433,5432")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://app:s3cret@db1:3306,db2:3306/emails", "only PostgreSQL"),
        ("postgres://app:s3cret@db1:5432,db2:5432/emails", "not target_session_attrs=read-write"),
        ("postgres://app:s3cret@db1,db2/emails?target_session_attrs=any", "not target_session_attrs=read-write"),
        (
            "postgres://app:s3cret@db1:5432,db2:port/emails?target_session_attrs=read-write",
            "unreadable host 'db2:port'",
        ),
        ("postgres://app:s3cret@db1:5432,:5433/emails", "unreadable host ':5433'"),
        ("postgres://app:s3cret@db1:5432,[::1/emails", "Invalid IPv6 URL"),
        ("postgres://app:s3cret@db1:5432,[::1]x/emails", "unreadable host '[::1]x'"),
        ("postgres://app:s3cret@db1,db2:70000/emails", "unreadable host 'db2:70000'"),
    ],
)
def test_an_unreadable_host_list_is_refused_naming_the_variable_but_not_the_password(url, says):
    with pytest.raises(DatabaseUrlError) as refused:
        database_config(url)

    assert "DATABASE_URL" in str(refused.value) and says in str(refused.value)
    assert "s3cret" not in str(refused.value)


@pytest.mark.django_db
def test_a_process_given_a_dead_host_first_connects_to_the_next_one():
    """A real process, with the first host a port where nothing listens: libpq moves on to the
    test database's server, as it does when a failed primary no longer answers."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@127.0.0.1:1,127.0.0.1:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": f"{url}?target_session_attrs=read-write", "DATABASE_CONN_MAX_AGE": "0"}
    script = (
        "import django; django.setup();"
        "from django.db import connection;"
        "cursor = connection.cursor(); cursor.execute('SELECT current_database()');"
        "print(cursor.fetchone()[0], connection.connection.info.port)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.split() == [db["NAME"], str(db["PORT"] or 5432)]


@pytest.mark.django_db(transaction=True)
def test_a_send_that_reaches_a_server_which_only_reads_is_a_json_503_and_writes_nothing(user_client):
    """During a failover a session may meet a server in recovery (a standby, a primary being
    demoted): PostgreSQL refuses the write with SQLSTATE 25006. Here the session is made
    read-only as a standby's are."""
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    try:
        response = user_client.post(
            "/api/v1/emails/sent-email/",
            {"recipients": ["a@example.com"], "subject": "s", "body": "b"},
            format="json",
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")

    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert response.json() == {
        "detail": "The database is unavailable; try again shortly.",
        "code": "database_unavailable",
    }
    assert not SentEmail.objects.exists()
