"""Benchmark scenarios for the send fields (attachments), beside bench/scenarios.py's."""

import base64
import os
import threading
from typing import Any

from bench import loads
from bench.scenarios.common import TEN, settle
from scripts.devstack import rss_mb

# Sends per run: the key is their median, and each carries a fresh 1 MiB of random bytes.
ATTACHMENT_SENDS = 10
# Sends queued while no sender runs, then drained by a fresh one: the prefetch (256) would take
# them all at once, so this is what SENDER_MAX_INFLIGHT_BYTES has to hold back.
QUEUED_ATTACHMENT_SENDS = 24
# A message with 1 MiB attached takes the sender a few milliseconds: sample often enough to see its peak.
RSS_SAMPLE_SECONDS = 0.02


def attachment_payload() -> dict[str, Any]:
    """A send to the ten recipients with a fresh 1 MiB of random bytes attached."""
    content = base64.b64encode(os.urandom(1024 * 1024)).decode()
    return {
        "recipients": TEN,
        "subject": "Your invoice",
        "body": "Attached.",
        "attachments": [{"filename": "invoice.pdf", "content": content}],
    }


def api_send_attachment(bench, context: dict[str, Any]) -> None:
    """One send with a 1 MiB attachment to 10 recipients: the API's answer time. The sender
    delivers them meanwhile. Then QUEUED_ATTACHMENT_SENDS more are queued while no sender runs
    and a fresh sender drains them. sender_rss_mb_attachments is the sender's peak RSS over both
    (sender_rss_mb is its peak over the whole run)."""
    payload = attachment_payload()
    stack = context["stack"]
    url = f"{context['web']}/api/v1/emails/sent-email/"

    def once() -> None:
        with PeakRss(stack.running["sender"][0].pid) as flowing:
            for _ in range(ATTACHMENT_SENDS if not bench.quick else 3):
                status, _, elapsed = loads.post_json(url, payload, context["token"])
                assert status == 202
                bench.record("api_send_attachment_1mb_ms", elapsed)
            settle(context)
        stack.stop("sender")
        for _ in range(QUEUED_ATTACHMENT_SENDS):
            status, _, _ = loads.post_json(url, payload, context["token"])
            assert status == 202
        with PeakRss(stack.start("sender").pid) as draining:
            settle(context)
        bench.record("sender_rss_mb_attachments", max(flowing.peak_mb, draining.peak_mb))
        bench.notes.append(
            f"api_send_attachment: sender peak {flowing.peak_mb:.1f} MB while sends flowed, "
            f"{draining.peak_mb:.1f} MB draining {QUEUED_ATTACHMENT_SENDS} queued sends"
        )

    bench.repeat("api_send_attachment", once)


class PeakRss:
    """The peak resident memory of one process while the block runs, sampled every RSS_SAMPLE_SECONDS."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="peak-rss")

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            self._stop.wait(RSS_SAMPLE_SECONDS)
