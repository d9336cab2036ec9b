"""SMTP_URL: `smtp://user:password@host:587?security=starttls|tls|none`, parsed and checked."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

SECURITY_MODES = ("starttls", "tls", "none")
# The submission port with STARTTLS is what relays expect from a sending service.
DEFAULT_PORT = {"starttls": 587, "tls": 465, "none": 25}


class SmtpUrlError(ValueError):
    pass


@dataclass(frozen=True, repr=False)
class SmtpUrl:
    host: str
    port: int
    security: str
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"smtp://{user}{self.host}:{self.port}?security={self.security}"

    @classmethod
    def parse(cls, url: str) -> SmtpUrl:
        """`smtp://user:password@host:587?security=starttls|tls|none`; raises SmtpUrlError saying why."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise SmtpUrlError(f"not a URL ({exc})") from None
        if parts.scheme != "smtp" or not parts.hostname:
            raise SmtpUrlError("must be smtp://[user:password@]host[:port][?security=starttls|tls|none]")
        security = parse_qs(parts.query).get("security", ["starttls"])[-1]
        if security not in SECURITY_MODES:
            raise SmtpUrlError(f"security must be one of {', '.join(SECURITY_MODES)} (got {security!r})")
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORT[security],
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
