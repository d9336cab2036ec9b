"""How long a message waits before its next attempt: exponential backoff after a failure, and
the provider's rate-limit window after a 429."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

from emailsender.clients import Response
from emailsender.settings import Settings

# A 429 waits at least this long: SendGrid's reset header has one-second resolution.
RATE_LIMIT_MIN_SECONDS = 1.0
# ... and at most this long, so a bogus reset header cannot park a message for hours.
RATE_LIMIT_MAX_SECONDS = 60.0
# Wait used when a 429 carries neither X-RateLimit-Reset nor Retry-After.
RATE_LIMIT_DEFAULT_SECONDS = 5.0


def backoff_seconds(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Delay after failed attempt number `attempt` (1-based): base * 4**(attempt-1), capped, jittered.

    The jitter keeps the upper half of the nominal delay ([nominal/2, nominal]) so that the
    messages failed by one SendGrid incident do not all come back in the same second, while
    the delay never exceeds its retry tier's TTL.
    """
    nominal = settings.backoff_seconds(attempt)
    return (rng or random).uniform(nominal / 2, nominal)


def _header_seconds(response: Response, now: float) -> float | None:
    reset = response.header("x-ratelimit-reset")
    if reset is not None:
        try:
            return float(reset) - now
        except ValueError:
            pass
    retry_after = response.header("retry-after")
    if retry_after is not None:
        try:
            return float(retry_after)
        except ValueError:
            try:
                return parsedate_to_datetime(retry_after).timestamp() - now
            except (TypeError, ValueError):
                pass
    return None


def rate_limit_wait(response: Response, now: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds to wait after a 429, from X-RateLimit-Reset (epoch seconds) or Retry-After.

    Clamped to [RATE_LIMIT_MIN_SECONDS, RATE_LIMIT_MAX_SECONDS]; up to 10% (at most 1 s) of
    jitter is added so that every replica does not hit SendGrid in the same instant the
    window resets.
    """
    raw = _header_seconds(response, time.time() if now is None else now)
    wait = RATE_LIMIT_DEFAULT_SECONDS if raw is None or raw != raw else raw  # raw != raw: NaN
    wait = min(max(wait, RATE_LIMIT_MIN_SECONDS), RATE_LIMIT_MAX_SECONDS)
    return wait + (rng or random).uniform(0, min(1.0, wait * 0.1))
