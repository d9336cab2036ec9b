"""Reading settings from environment variables: each reader names the variable when its value is unusable."""

import os
import re

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0 (got {value!r})")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    value = env_str(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer (got {value!r})") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum} (got {number})")
    return number


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_rate(name: str, default: str) -> tuple[int, int]:
    """(attempts, seconds) from DRF's rate syntax ("20/min", "10/hour"), which may also put a
    count before the unit: "10/15min" is 10 per 15 minutes."""
    value = env_str(name, default)
    match = re.fullmatch(r"(\d+)\s*/\s*(\d*)\s*([smhd])[a-z]*", value.lower())
    if not match or int(match[1]) < 1 or match[2] == "0":
        raise ImproperlyConfigured(f"{name} must be a rate such as 20/min or 10/15min (got {value!r})")
    return int(match[1]), int(match[2] or 1) * RATE_UNITS[match[3]]


def env_seconds_list(name: str, default: str) -> tuple[int, ...]:
    """Whole seconds, comma separated ("5,300,1800"): at least one, each from 1 to 7 days."""
    value = env_str(name, default)
    try:
        delays = tuple(int(item) for item in value.split(","))
    except ValueError:
        delays = ()
    if not delays or any(not 1 <= delay <= 7 * 86400 for delay in delays):
        raise ImproperlyConfigured(
            f"{name} must be whole seconds from 1 to 604800, comma separated, such as 5,300,1800 (got {value!r})"
        )
    return delays
