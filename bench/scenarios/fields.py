"""Benchmark scenarios for the send fields (attachments), beside bench/scenarios.py's."""

import base64
import os
from typing import Any

from bench import loads
from bench.scenarios.common import TEN, settle

# Sends per run: the key is their median, and each carries a fresh 1 MiB of random bytes.
ATTACHMENT_SENDS = 10


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
    """One send with a 1 MiB attachment to 10 recipients: the API's answer time (the sender
    delivers them meanwhile, so its RSS with such messages is in sender_rss_mb)."""
    payload = attachment_payload()

    def once() -> None:
        for _ in range(ATTACHMENT_SENDS if not bench.quick else 3):
            status, _, elapsed = loads.post_json(
                f"{context['web']}/api/v1/emails/sent-email/", payload, context["token"]
            )
            assert status == 202
            bench.record("api_send_attachment_1mb_ms", elapsed)
        settle(context)

    bench.repeat("api_send_attachment", once)
