"""Consuming the two lanes of work (docs/sender/fairness.md): the normal work queue and the bulk
one, each with its own prefetch window, on one channel.

basic.qos without `global` sets the window of the consumers started after it on the channel,
so each lane holds at most its own window while one channel carries both (its delivery tags
stay unique across lanes, which the sender's bookkeeping keys on).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from emailsender import topology
from emailsender.settings import Settings


def consume_lanes(channel: Any, settings: Settings, on_message: Callable[..., None]) -> list[str]:
    """Consume both lanes' work queues on `channel`; their consumer tags. `on_message` is called
    with the lane first, then pika's (channel, method, properties, body)."""
    windows = ((topology.WORK_KEY, settings.prefetch), (topology.BULK_KEY, settings.bulk_window))
    tags = []
    for lane, prefetch in windows:
        channel.basic_qos(prefetch_count=prefetch)
        queue = topology.lane_queue(settings.queue_prefix, lane)
        tags.append(str(channel.basic_consume(queue, on_message_callback=functools.partial(on_message, lane))))
    return tags


def lanes_described(settings: Settings) -> dict[str, Any]:
    """The lanes' queues and limits, for the sender's `consuming` log line."""
    return {
        "queues": [topology.lane_queue(settings.queue_prefix, lane) for lane in topology.LANES],
        "prefetch": settings.prefetch,
        "bulk_prefetch": settings.bulk_window,
        "bulk_workers": settings.bulk_workers,
    }
