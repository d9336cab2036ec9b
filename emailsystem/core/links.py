"""Absolute links to this service, for what leaves it (links mailed to people)."""

from django.conf import settings
from django.http import HttpRequest


def public_base_url(request: HttpRequest) -> str:
    """PUBLIC_BASE_URL, or else the scheme and host this request came to (no trailing slash).

    The fallback trusts the Host header only as far as DJANGO_ALLOWED_HOSTS does; behind a proxy
    that rewrites it, set PUBLIC_BASE_URL.
    """
    return settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")
