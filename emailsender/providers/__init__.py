"""An ordered list of providers with a circuit breaker each, behind the one-client interface.

`ProviderChain.send(payload)` tries the first provider whose breaker lets a call through and
moves to the next one when the answer is a definite failure of the provider (5xx, 401/403,
refused connection, TLS failure, SMTP auth failure). Everything else is returned as it is:
a 2xx, a 400 about the message, a 429, an SMTP 4xx deferral. A timeout is returned too (the
handler retries the message after its backoff) and never sent on to the next provider in the
same attempt, because the provider may have sent it; it counts toward opening the breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from emailsender import metrics
from emailsender.breaker import COOL_DOWN_SECONDS, FAILURE_THRESHOLD, CircuitBreaker
from emailsender.clients import Client, EmlFolderClient, Response, SendGridClient, TransportError
from emailsender.providers.smtp import SmtpClient
from emailsender.settings import PROVIDER_NAMES, Settings


def definite_failure(response: Response) -> bool:
    """An answer that says the provider cannot send anything now (not: this message is wrong)."""
    return response.status_code >= 500 or response.status_code in (401, 403)


class ProviderChain:
    """A `Client` over several named clients, tried in order; safe to call from many threads."""

    def __init__(
        self,
        providers: Sequence[tuple[str, Client]],
        *,
        threshold: int = FAILURE_THRESHOLD,
        cool_down: float = COOL_DOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("at least one provider")
        self.providers = [
            (name, client, CircuitBreaker(name, threshold=threshold, cool_down=cool_down, clock=clock))
            for name, client in providers
        ]

    def __repr__(self) -> str:
        return f"ProviderChain({', '.join(f'{name}={client!r}' for name, client, _ in self.providers)})"

    def breaker(self, name: str) -> CircuitBreaker:
        return next(breaker for provider, _, breaker in self.providers if provider == name)

    def send(self, payload: dict[str, Any]) -> Response:
        last: Response | TransportError | None = None
        final = len(self.providers) - 1
        for position, (name, client, breaker) in enumerate(self.providers):
            # A breaker only decides whether to move on to the next provider. When every one is
            # open, the last is called anyway: with nowhere to go, refusing the call would spend
            # the message's attempts without trying (a single provider keeps its retries).
            if not breaker.allow() and not (position == final and last is None):
                continue
            try:
                response = replace(client.send(payload), provider=name)
            except TransportError as exc:
                exc.provider = name
                metrics.record_provider_send(name, exc.kind)
                if exc.kind == "deferred":
                    breaker.success()  # the relay answered: it works, this message must wait
                    raise
                breaker.failure(f"{exc.kind}: {exc.detail}")
                if exc.kind == "timeout":
                    raise
                last = exc
                continue
            except BaseException:
                breaker.failure("unexpected error")  # never leaves a half-open breaker waiting on its probe
                raise
            if definite_failure(response):
                metrics.record_provider_send(name, "failed")
                breaker.failure(f"status {response.status_code}")
                last = response
                continue
            breaker.success()
            metrics.record_provider_send(name, "sent" if response.status_code < 300 else "refused")
            return response
        assert last is not None  # the last provider is always called when no other was
        if isinstance(last, TransportError):
            raise last
        return last


__all__ = ["PROVIDER_NAMES", "ProviderChain", "definite_failure", "providers_from_settings"]


def client_for(name: str, settings: Settings) -> Client:
    if name == "sendgrid":
        if not settings.sendgrid_api_key:
            raise ValueError("the sendgrid provider needs SENDGRID_API_KEY")
        return SendGridClient(settings.sendgrid_api_key, settings.sendgrid_api_host, settings.sendgrid_timeout_seconds)
    if name == "smtp":
        if not settings.smtp_url:
            raise ValueError("the smtp provider needs SMTP_URL")
        return SmtpClient(settings.smtp_url, settings.smtp_timeout_seconds)
    return EmlFolderClient(settings.outbox_dir)


def providers_from_settings(settings: Settings) -> ProviderChain:
    """The providers EMAIL_PROVIDERS names, in its order (Settings.from_env has checked them),
    each breaker probing BREAKER_COOL_DOWN_SECONDS after it opened."""
    return ProviderChain(
        [(name, client_for(name, settings)) for name in settings.providers],
        cool_down=settings.breaker_cool_down_seconds,
    )
