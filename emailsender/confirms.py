"""Publisher confirms for a batch on a pika BlockingChannel: every message written, one flush,
then the broker's answer to each of them, awaited at once or noted as it arrives.

Why confirms and not AMQP transactions: on RabbitMQ 3.10 a quorum queue whose leader has just
died refuses publishes until a new leader is elected; in confirm mode the publisher gets a
`basic.nack` for each, but in a transaction the refusal is dropped and `tx.commit-ok` comes back
as if the messages were stored. Measured on a private three-node cluster (chaos/cluster.py),
publishing on new channels while the leader's node was SIGKILLed: 170 messages committed,
160 in the queue afterwards; with confirms, the 10 refused were nacked and the 160 acked all
arrived. `make chaos` `broker_node_kill` checks it end to end.

Why not `BlockingChannel.confirm_delivery()`: its `basic_publish` then waits for each confirm
before returning, one round trip per message. Here the publishes go out without a flush each
(unflushed.py), and either `wait()` flushes them and waits once, or `flush()` writes them and
`settled()` later tells whether their confirms have come back, so a caller can go on working
while several batches await theirs. This uses `BlockingChannel._impl` (the
asynchronous pika Channel it wraps) and `_flush_output` as unflushed.py does; the sender's and
the web's tests against a real broker go through both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel

from emailsender import unflushed


class ConfirmedChannel:
    """A BlockingChannel in confirm mode whose publishes are confirmed together by `wait()`."""

    def __init__(self, channel: BlockingChannel, on_answer: Callable[[], None] | None = None) -> None:
        """`on_answer` is called (on the connection's thread) whenever the broker's acks or nacks arrive."""
        self.channel = channel
        self._on_answer = on_answer
        self._next_tag = 1  # the broker numbers a confirm-mode channel's publishes from 1
        self._outstanding: set[int] = set()
        self._nacked: set[int] = set()
        selected: list[Any] = []
        channel._impl.confirm_delivery(  # type: ignore[attr-defined]  # pika's wrapped Channel, not in the stubs
            ack_nack_callback=self._on_ack_nack, callback=selected.append
        )
        channel._flush_output(lambda: bool(selected))  # type: ignore[attr-defined]  # as above

    def publish(
        self, *, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties, mandatory: bool
    ) -> int:
        """Write one publish without flushing it; its delivery tag, which `wait()` may name as refused."""
        tag = self._next_tag
        unflushed.publish(
            self.channel,
            exchange=exchange,
            routing_key=routing_key,
            body=body,
            properties=properties,
            mandatory=mandatory,
        )
        self._next_tag += 1
        self._outstanding.add(tag)
        return tag

    @property
    def next_tag(self) -> int:
        """The delivery tag the next publish gets."""
        return self._next_tag

    def flush(self) -> None:
        """Write the publishes without waiting for their confirms (`settled()` tells when they come).
        Raises pika's errors for a closed channel or connection."""
        self.channel._flush_output()  # type: ignore[attr-defined]  # as in __init__

    def settled(self, first: int, last: int) -> bool:
        """Whether the broker has acked or nacked every publish tagged `first` to `last`. Confirms
        arrive as the connection's I/O loop reads them (any pika call on the connection)."""
        outstanding = self._outstanding
        return not outstanding or not any(tag in outstanding for tag in range(first, last + 1))

    def refused(self, first: int, last: int) -> set[int]:
        """The tags from `first` to `last` the broker nacked (not stored), forgotten once told."""
        tags = {tag for tag in self._nacked if first <= tag <= last}
        self._nacked -= tags
        return tags

    def wait(self) -> set[int]:
        """Flush the publishes and wait until the broker has acked or nacked every one; the tags it
        nacked (not stored). Raises pika's errors if the channel or connection fails first: then any
        of them may or may not be stored."""
        self.channel._flush_output(lambda: not self._outstanding)  # type: ignore[attr-defined]  # as in __init__
        nacked, self._nacked = self._nacked, set()
        return nacked

    def _on_ack_nack(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        if method.multiple:
            answered = {outstanding for outstanding in self._outstanding if outstanding <= tag}
        else:
            answered = {tag} & self._outstanding
        self._outstanding -= answered
        if isinstance(method, pika.spec.Basic.Nack):
            self._nacked |= answered
        if self._on_answer is not None:
            self._on_answer()
