"""A send's addresses as Recipient rows: looked up (with the sending user's suppressions) and created in bulk."""

from dataclasses import dataclass

from emailsystem.emails.models import Recipient
from emailsystem.emails.sql import recipients_lookup
from emailsystem.users.models import User


@dataclass(frozen=True)
class ResolvedRecipients:
    ids: dict[str, int]  # address -> Recipient id
    suppressed: frozenset[str]  # addresses on the sending user's suppression list


def recipients_resolve(*, user: User, addresses: list[str]) -> ResolvedRecipients:
    """Map each (normalised) address to its Recipient id, creating the missing ones in bulk,
    and tell which are suppressed for `user`.

    Most sends go to addresses seen before, so look them up first (one query) and insert
    only what is missing; a concurrent send may insert the same address first, which the
    conflict clause absorbs before the second lookup. A new address cannot be suppressed yet.
    """
    ids: dict[str, int] = {}
    suppressed = set()
    for address, recipient_id, is_suppressed in recipients_lookup(user_id=user.pk, addresses=addresses):
        ids[address] = recipient_id
        if is_suppressed:
            suppressed.add(address)
    missing = [address for address in addresses if address not in ids]
    if missing:
        Recipient.objects.bulk_create([Recipient(email=address) for address in missing], ignore_conflicts=True)
        ids.update(Recipient.objects.filter(email__in=missing).values_list("email", "id"))
    return ResolvedRecipients(ids=ids, suppressed=frozenset(suppressed))
