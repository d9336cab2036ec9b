"""The batch send's benchmark: `api_batch_msgs_per_s`."""

import threading
import time
import urllib.error
from typing import Any

from bench import loads
from bench.scenarios.common import settle

BATCH_SIZE = 100
CLIENTS = 4


def batch_payload(context: dict[str, Any]) -> dict[str, Any]:
    """100 one-recipient template messages, each with its own recipient and context (receipts)."""
    return {
        "messages": [
            {"recipients": [f"batch{n}@example.com"], "template": context["template_id"], "context": {"name": f"N{n}"}}
            for n in range(BATCH_SIZE)
        ]
    }


def api_batch(bench, context: dict[str, Any]) -> None:
    """POST emails/batch/ with 100 one-recipient template messages, 4 closed-loop clients, 20 s,
    the API alone (the sender is stopped during the load and drains the backlog afterwards, as
    for api_send). Clients are Python threads: a batch takes tens of milliseconds to answer,
    so a client's own work is a small share of a request."""
    payload = batch_payload(context)
    url = f"{context['web']}/api/v1/emails/batch/"

    def once() -> None:
        context["stack"].stop("sender")
        accepted, failed = [0], [0]
        lock = threading.Lock()
        deadline = time.monotonic() + bench.seconds(20)

        def client() -> None:
            while time.monotonic() < deadline:
                try:
                    status, answer, _ = loads.post_json(url, payload, context["token"])
                    ok = status == 202 and len(answer["results"]) == BATCH_SIZE
                except (OSError, urllib.error.URLError, ValueError):
                    ok = False
                with lock:
                    if ok:
                        accepted[0] += 1
                    else:
                        failed[0] += 1

        started = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        context["stack"].start("sender")
        settle(context)
        if failed[0]:
            bench.notes.append(f"api_batch: {failed[0]} of {accepted[0] + failed[0]} batches failed")
        bench.record("api_batch_msgs_per_s", accepted[0] * BATCH_SIZE / elapsed)

    bench.repeat("api_batch", once)
