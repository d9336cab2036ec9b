"""The sender's consumers of the two lanes' work queues, held to a bound in bytes as well as in
messages.

RabbitMQ's flow control counts messages (`basic.qos` prefetch_count; it does not implement
prefetch_size), and a work message weighs from about 1 KB to 14 MB (10 MiB of attachments as
base64). A prefetch sized for one-recipient messages (SENDER_PREFETCH, 256) lets a backlog of
large ones put 256 of them in the process at once, 32 of them in worker threads, where
each is parsed and serialised again. So each lane's intake also keeps the bytes in hand (work
message bodies delivered and not yet acked, nacked or dropped, both lanes together:
`Jobs.bytes_in_hand`) within a bound:

- The process has one budget, SENDER_MAX_INFLIGHT_BYTES. The normal lane may fill all of it;
  the bulk lane takes more only while the bytes in hand stay within its workers' share of it
  (`Settings.bulk_max_inflight_bytes`, 24/32 of 6 MiB by default). The rest is always free
  for the normal lane, so a small normal send never waits for bulk bytes to drain, while a
  normal backlog may hold the bulk lane back, as it holds back the bulk lane's workers
  (docs/sender/fairness.md). One budget per lane would cap the normal lane at a fixed split
  even when no bulk work is in hand; this way either lane alone gets what the process allows
  it, and the total stays within the one figure that sizes the pod's memory.
- A delivery is admitted while the bytes in hand plus its own stay within the lane's bound,
  or when its lane holds nothing (the bulk lane: when nothing at all is in hand), so one
  message larger than the room is taken alone. A normal message larger than what the bulk
  lane leaves free thus waits for no bulk bytes; the process then holds at most the bulk
  share plus that one message.
- The first delivery over the bound is refused: the caller nacks it back to the queue (other
  replicas may take it) and that lane's consumer is cancelled, so the broker sends no more;
  pika nacks back whatever was already on its way (`BlockingChannel.basic_cancel`).
- One consumer per lane, whose prefetch is what fits: (bound - bytes in hand) // the largest
  of the lane's last prefetch-many message sizes, between 1 and the lane's prefetch. A fresh
  process starts each lane with a prefetch of 1, as nothing is known of the sizes yet. When
  more fits than the consumer's prefetch and the broker has none of its credit left (every
  message it may send is held), the consumer is replaced by one with the larger prefetch:
  with no credit left nothing is on its way, so the cancel gives nothing back.
  One-recipient messages reach the full prefetch at the second message; large ones stop at
  what fits.
- After a pause a new consumer starts as soon as one message fits again.

Every guarantee of the consumer holds across these changes: a cancel does not touch the
messages already delivered (they are acked on the same channel after their outcome), and a
message given back goes to the head of the queue, unsent. The price is that each message
given back is delivered once more (a redelivery, counted by a quorum queue's delivery limit);
this happens only when the sizes of the messages grow past what the prefetch was chosen for.

Only the connection thread calls this class, as it does every pika call.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from emailsender import metrics

log = logging.getLogger("emailsender")


class Intake:
    """One lane's consumer on the consuming channel, started, paused and resized by bytes in hand."""

    def __init__(
        self,
        *,
        lane: str,
        max_bytes: int,
        max_prefetch: int,
        bytes_in_hand: Callable[[], int],
        alone_bytes: Callable[[], int],
        held_tags: Callable[[], Iterable[str]],
    ) -> None:
        self.lane = lane
        self.max_bytes = max_bytes
        self.max_prefetch = max_prefetch
        self._bytes_in_hand = bytes_in_hand  # what the bound counts: both lanes' bodies
        self._alone_bytes = alone_bytes  # while this is 0, a message over the bound is taken alone
        self._held_tags = held_tags  # the consumer tag of each message held on the channel
        # Sizes of the lane's last max_prefetch deliveries, kept across connections.
        self.sizes: deque[int] = deque(maxlen=max_prefetch)
        self.peak_bytes = 0  # the most ever in hand right after this lane's admission: a test hook and a log field
        self.prefetch = 0  # the running consumer's prefetch; 0 while paused
        self.refused = 0
        self._channel: Any = None
        self._queue = ""
        self._on_message: Callable[..., None] | None = None
        self._tag: str | None = None
        self._refused_since_tick = False

    # -- the consumer's callback side ------------------------------------------------------

    def admit(self, size: int) -> bool:
        """Whether a delivery of `size` bytes may be held (the caller counts it in hand if so,
        and nacks it back if not)."""
        self.sizes.append(size)
        in_hand = self._bytes_in_hand()
        if self._alone_bytes() and in_hand + size > self.max_bytes:
            self.refused += 1
            self._refused_since_tick = True
            return False
        self.peak_bytes = max(self.peak_bytes, in_hand + size)
        return True

    # -- the loop's side -------------------------------------------------------------------

    def start(self, channel: Any, queue: str, on_message: Callable[..., None]) -> None:
        """Consume `queue` on `channel` (a new connection's) with the prefetch that fits now."""
        self._channel, self._queue, self._on_message = channel, queue, on_message
        self._tag = None
        self.prefetch = 0
        self._refused_since_tick = False
        self._consume(max(1, self._fitting_prefetch() if self.sizes else 1))

    def adjust(self) -> None:
        """Once per loop pass: pause after a refusal, resume or widen when a larger prefetch fits."""
        if self._refused_since_tick:
            self._refused_since_tick = False
            if self._tag is not None:
                log.info(
                    "pausing intake: bytes in hand at the bound",
                    extra={"lane": self.lane, "bytes_in_hand": self._bytes_in_hand(), "max_bytes": self.max_bytes},
                )
                self.cancel()
            return
        if self.prefetch >= self.max_prefetch:
            return
        fits = self._fitting_prefetch()
        if self._tag is None:
            if fits == 0 and not self._alone_bytes():
                fits = 1  # a message larger than the room still goes, alone
            if fits >= 1:
                self._consume(fits)
        elif fits > self.prefetch and sum(1 for tag in self._held_tags() if tag == self._tag) >= self.prefetch:
            self.cancel()  # its credit is used up: nothing is on its way to be given back
            self._consume(fits)

    def cancel(self) -> None:
        """Stop the consumer (shutdown, or a pause); messages already delivered stay ours to ack."""
        if self._tag is not None:
            tag, self._tag = self._tag, None
            self.prefetch = 0
            metrics.PREFETCH.labels(self.lane).set(0)
            self._channel.basic_cancel(tag)

    def _fitting_prefetch(self) -> int:
        largest = max(self.sizes, default=1)
        room = self.max_bytes - self._bytes_in_hand()
        return max(0, min(room // max(largest, 1), self.max_prefetch))

    def _consume(self, prefetch: int) -> None:
        # A per-consumer prefetch applies to the consumers started after it on the channel.
        self._channel.basic_qos(prefetch_count=prefetch)
        self._tag = str(self._channel.basic_consume(self._queue, on_message_callback=self._on_message))
        self.prefetch = prefetch
        metrics.PREFETCH.labels(self.lane).set(prefetch)
        if prefetch < self.max_prefetch:
            log.info(
                "intake resized",
                extra={
                    "lane": self.lane,
                    "prefetch": prefetch,
                    "bytes_in_hand": self._bytes_in_hand(),
                    "largest": max(self.sizes, default=0),
                },
            )
