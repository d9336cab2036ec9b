"""CPU cost of ObservabilityMiddleware per request: 2,000 in-process requests with and without it.

    DJANGO_DEBUG=1 .venv/bin/python -m bench.middleware_cost

The requests go through Django's full handler (django.test.Client, every other middleware on)
to /healthz, the cheapest view, so the difference is the middleware's own cost: request id,
context variable, two metric updates, one response header. Runs alternate so that machine
noise hits both sides alike; the figure is the median of the runs. No server, no database.
"""

import os
import statistics
import time

REQUESTS = 2000
RUNS = 7
MIDDLEWARE = "emailsystem.core.middleware.ObservabilityMiddleware"


def cpu_per_request_us(client, path: str) -> float:
    for _ in range(100):  # warm-up: imports, URL resolver caches, metric children
        client.get(path)
    started = time.process_time()
    for _ in range(REQUESTS):
        client.get(path)
    return (time.process_time() - started) / REQUESTS * 1e6


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailsystem.settings")
    os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    without = [name for name in settings.MIDDLEWARE if name != MIDDLEWARE]
    results: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(RUNS):
        with override_settings(MIDDLEWARE=settings.MIDDLEWARE):
            results["with"].append(cpu_per_request_us(Client(HTTP_HOST="127.0.0.1"), "/healthz"))
        with override_settings(MIDDLEWARE=without):
            results["without"].append(cpu_per_request_us(Client(HTTP_HOST="127.0.0.1"), "/healthz"))
    with_us, without_us = statistics.median(results["with"]), statistics.median(results["without"])
    print(f"{REQUESTS} requests x {RUNS} runs to /healthz, CPU per request (median of runs):")
    print(f"  with ObservabilityMiddleware:    {with_us:7.1f} us   runs {[round(v) for v in results['with']]}")
    print(f"  without:                         {without_us:7.1f} us   runs {[round(v) for v in results['without']]}")
    print(f"  cost of the middleware:          {with_us - without_us:7.1f} us per request")
    print(f"  the middleware alone around a trivial view: {isolated_cost_us():.1f} us per request")


def isolated_cost_us() -> float:
    """The middleware wrapped around a view that does nothing, minus that view alone: less noise."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from emailsystem.core.middleware import ObservabilityMiddleware

    requests = [RequestFactory().get("/healthz") for _ in range(REQUESTS)]
    view = lambda request: HttpResponse()  # noqa: E731
    wrapped = ObservabilityMiddleware(view)
    samples = []
    for _ in range(RUNS):
        started = time.process_time()
        for request in requests:
            wrapped(request)
        middle = time.process_time()
        for request in requests:
            view(request)
        samples.append(((middle - started) - (time.process_time() - middle)) / REQUESTS * 1e6)
    return statistics.median(samples)


if __name__ == "__main__":
    main()
