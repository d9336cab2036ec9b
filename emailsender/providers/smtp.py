"""The SMTP provider: any relay (Postfix, Amazon SES's SMTP endpoint, Mailgun, a local Mailpit).

`SmtpClient.send(payload)` takes the same SendGrid v3 payload as the other clients and sends one
message per personalization (per recipient), built by mime.payload_mime exactly as the .eml
outbox writes it, so recipients never see each other. Its answers read like SendGrid's:

- every recipient accepted, or refused for good (5xx on RCPT or DATA): a 250 `Response` whose
  `refused` names the refused deliveries; the others are sent;
- a 4xx reply (421, 450, 451, 452) for any recipient: `TransportError("deferred")`, retried;
- no connection, a dropped one, a TLS failure: `TransportError("connection")`; no answer in
  time: `TransportError("timeout")`;
- authentication refused (535 and other AUTH errors): a 535 `Response`, a failure of the
  provider itself (the breaker counts it).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from typing import Any

from emailsender.clients import Response, TransportError
from emailsender.mime import payload_mime
from emailsender.options import is_sandbox
from emailsender.smtp_url import SmtpUrl

# The domain that ends Message-IDs of mail sent over SMTP.
MESSAGE_ID_DOMAIN = "emailsender.invalid"


class SmtpClient:
    """Sends over one SMTP connection per worker thread, kept open between messages."""

    def __init__(self, url: str | SmtpUrl, timeout: float = 10.0) -> None:
        self.url = url if isinstance(url, SmtpUrl) else SmtpUrl.parse(url)
        self._timeout = timeout
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SmtpClient(url={self.url!r}, timeout={self._timeout!r})"

    def _connect(self) -> smtplib.SMTP:
        url, context = self.url, ssl.create_default_context()
        if url.security == "tls":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(url.host, url.port, timeout=self._timeout, context=context)
        else:
            connection = smtplib.SMTP(url.host, url.port, timeout=self._timeout)
        try:
            if url.security == "starttls":
                connection.starttls(context=context)
            if url.username:
                connection.login(url.username, url.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        """This thread's connection and whether it was open already (and may have been closed by the relay)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        self._local.connection = self._connect()
        return self._local.connection, False

    def close(self) -> None:
        connection, self._local.connection = getattr(self._local, "connection", None), None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def send(self, payload: dict[str, Any]) -> Response:
        if is_sandbox(payload):
            # A relay has no sandbox mode: accepted and delivered nothing, as SendGrid's sandbox answers.
            return Response(status_code=200, provider="smtp")
        try:
            return self._send(payload)
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            return Response(status_code=exc.smtp_code, body=_text(exc.smtp_error).encode(), provider="smtp")
        except TimeoutError as exc:
            self.close()
            raise TransportError("timeout", f"no answer within {self._timeout:g}s") from exc
        except smtplib.SMTPResponseException as exc:  # a 4xx or 5xx about the connection, not a recipient
            self.close()
            # A relay that greets with 421 is unavailable (a provider failure); a later 4xx defers.
            temporary = 400 <= exc.smtp_code < 500 and not isinstance(exc, smtplib.SMTPConnectError)
            kind = "deferred" if temporary else "connection"
            raise TransportError(kind, f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}"[:200]) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, TLS (ssl.SSLError is an OSError)
            self.close()
            raise TransportError("connection", f"SMTP {type(exc).__name__}: {exc}"[:200]) from exc

    def _send(self, payload: dict[str, Any]) -> Response:
        refused: dict[int, str] = {}
        deferred: list[str] = []
        accepted = 0
        for personalization in payload["personalizations"]:
            reply = self._send_one(payload, personalization)
            delivery_id = int(personalization.get("custom_args", {}).get("delivery_id", 0))
            if reply is None:
                accepted += 1
            elif reply[0] >= 500:
                refused[delivery_id] = f"SMTP {reply[0]} {reply[1]}"
            else:
                deferred.append(f"SMTP {reply[0]} {reply[1]}")
        if deferred:
            raise TransportError("deferred", "; ".join(deferred)[:200])
        return Response(status_code=250, provider="smtp", refused=refused)

    def _send_one(self, payload: dict[str, Any], personalization: dict[str, Any]) -> tuple[int, str] | None:
        """None when the relay accepted the message, else the (code, text) it refused it with."""
        message = payload_mime(payload, personalization, domain=MESSAGE_ID_DOMAIN)
        sender = payload["from"]["email"]
        recipients = [to["email"] for to in personalization["to"]]
        connection, reused = self._connection()
        try:
            return _sendmail(connection, sender, recipients, message)
        except smtplib.SMTPServerDisconnected:
            if not reused:
                raise
            self._local.connection = None  # the relay closed an idle connection: one fresh try
            connection, _ = self._connection()
            return _sendmail(connection, sender, recipients, message)


def _sendmail(connection: smtplib.SMTP, sender: str, recipients: list[str], message: bytes) -> tuple[int, str] | None:
    text: bytes | str
    try:
        connection.sendmail(sender, recipients, message)
    except smtplib.SMTPRecipientsRefused as exc:  # raised when every recipient (here: the one) is refused
        code, text = next(iter(exc.recipients.values()))
    except smtplib.SMTPDataError as exc:
        code, text = exc.smtp_code, exc.smtp_error
    else:
        return None
    _reset(connection)
    return code, _text(text)


def _reset(connection: smtplib.SMTP) -> None:
    """After a refused recipient, the next message starts a clean transaction."""
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        connection.rset()


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:200]
