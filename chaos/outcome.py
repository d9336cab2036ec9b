"""What a scenario came to: the figures of the table and every broken guarantee."""

from dataclasses import dataclass, field


@dataclass
class Outcome:
    scenario: str
    description: str
    offered: int = 0  # emails asked for (a batch counts each of its messages)
    accepted: int = 0  # emails answered 202
    recipients: int = 0
    delivered: int = 0  # accepted recipients that reached a provider (SendGrid or SMTP)
    via_smtp: int = 0  # ... of them through SMTP
    duplicated: int = 0
    lost: int = 0
    early: int = 0  # scheduled recipients that reached a provider before their send_at
    recovery_seconds: float = 0.0
    settle_seconds: float = 0.0
    web_5xx: int = 0
    readyz_503: int = 0
    emails_by_kind: dict[str, int] = field(default_factory=dict)  # accepted emails: plain, scheduled, batch
    scheduled_due_in_fault: int = 0  # accepted scheduled emails whose send_at fell inside the fault
    answers_by_status: dict[str, int] = field(default_factory=dict)
    sendgrid_by_status: dict[str, int] = field(default_factory=dict)  # the fake's answers to this scenario
    # sendgrid_outage: recipients each provider carried during the outage and after it, and
    # the moves of the senders' SendGrid breakers
    failover: dict[str, int] = field(default_factory=dict)
    # (delivery id, seconds from the fault's start to each accepted copy), for the first few
    duplicate_examples: list[tuple[int, list[float]]] = field(default_factory=list)
    # What the fault itself measured (the node killed, how soon new leaders were elected ...)
    notes: list[str] = field(default_factory=list)
    # webhooks_kill: outbound webhook messages recorded, arrived (distinct webhook-ids) and repeated
    webhooks: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures
