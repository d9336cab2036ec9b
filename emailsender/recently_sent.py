"""Sent outcomes this process could not ack: a redelivery of one is recorded without sending again."""

from __future__ import annotations

from collections import OrderedDict

from emailsender.messages import InvalidMessage, parse_work
from emailsender.outcomes import Outcome, OutcomeKind

# Bounded: it only has to outlive a reconnect.
RECENTLY_SENT_MAX = 10_000


class RecentlySent:
    def __init__(self, limit: int = RECENTLY_SENT_MAX) -> None:
        self.limit = limit
        self._outcomes: OrderedDict[tuple[int, tuple[int, ...]], Outcome] = OrderedDict()

    def __bool__(self) -> bool:
        return bool(self._outcomes)

    def remember(self, outcome: Outcome | None) -> None:
        """Keep a sent outcome (anything else is not remembered), dropping the oldest past the limit."""
        if outcome is not None and outcome.kind is OutcomeKind.SENT and outcome.email_id is not None:
            self._outcomes[(outcome.email_id, outcome.delivery_ids)] = outcome
            while len(self._outcomes) > self.limit:
                self._outcomes.popitem(last=False)

    def get(self, email_id: int, delivery_ids: tuple[int, ...]) -> Outcome | None:
        return self._outcomes.get((email_id, delivery_ids))

    def get_for_work(self, body: bytes) -> Outcome | None:
        """The remembered outcome of this work message's email and deliveries (None for an unreadable body)."""
        if not self._outcomes:
            return None
        try:
            message = parse_work(body)
        except InvalidMessage:
            return None
        return self.get(message.email_id, message.delivery_ids)

    def forget(self, outcome: Outcome) -> None:
        """The outcome was recorded after all (published and acked)."""
        if outcome.email_id is not None:
            self._outcomes.pop((outcome.email_id, outcome.delivery_ids), None)
