"""Consuming the two lanes of work (docs/sender/fairness.md): the normal work queue and the bulk
one, each with its own prefetch window, on one channel, both within one budget in bytes
(intake.py).

basic.qos without `global` sets the window of the consumers started after it on the channel,
so each lane holds at most its own window while one channel carries both (its delivery tags
stay unique across lanes, which the sender's bookkeeping keys on).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from emailsender import topology
from emailsender.intake import Intake
from emailsender.jobs import Jobs
from emailsender.settings import Settings


def lane_intakes(settings: Settings, jobs: Jobs) -> dict[str, Intake]:
    """Each lane's intake (intake.py), normal lane first: one byte budget for the process, of
    which the bulk lane may fill its workers' share."""
    normal = Intake(
        lane=topology.WORK_KEY,
        max_bytes=settings.max_inflight_bytes,
        max_prefetch=settings.prefetch,
        bytes_in_hand=lambda: jobs.bytes_in_hand,
        alone_bytes=lambda: jobs.lane_bytes[topology.WORK_KEY],
        held_tags=jobs.held_consumer_tags,
    )
    bulk = Intake(
        lane=topology.BULK_KEY,
        max_bytes=settings.bulk_max_inflight_bytes,
        max_prefetch=settings.bulk_window,
        bytes_in_hand=lambda: jobs.bytes_in_hand,
        alone_bytes=lambda: jobs.bytes_in_hand,
        held_tags=jobs.held_consumer_tags,
    )
    return {topology.WORK_KEY: normal, topology.BULK_KEY: bulk}


def consume_lanes(
    channel: Any, settings: Settings, intakes: dict[str, Intake], on_message: Callable[..., None]
) -> None:
    """Consume both lanes' work queues on `channel` through their intakes. `on_message` is called
    with the lane first, then pika's (channel, method, properties, body)."""
    for lane, intake in intakes.items():
        queue = topology.lane_queue(settings.queue_prefix, lane)
        intake.start(channel, queue, functools.partial(on_message, lane))


def lanes_described(settings: Settings) -> dict[str, Any]:
    """The lanes' queues and limits, for the sender's `consuming` log line."""
    return {
        "queues": [topology.lane_queue(settings.queue_prefix, lane) for lane in topology.LANES],
        "prefetch": settings.prefetch,
        "bulk_prefetch": settings.bulk_window,
        "bulk_workers": settings.bulk_workers,
        "max_inflight_bytes": settings.max_inflight_bytes,
        "bulk_max_inflight_bytes": settings.bulk_max_inflight_bytes,
    }
