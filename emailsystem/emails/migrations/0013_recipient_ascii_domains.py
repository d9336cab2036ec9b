# Addresses are stored with their domain in its one ASCII spelling (users.models.normalize_email_address),
# and sends look their Recipient up in it. Recipients recorded before keep the spelling they were sent
# to (anna@café.example), whose suppressions a send to either spelling would no longer find. This
# writes each in the ASCII spelling (anna@xn--caf-dma.example). Where both spellings already have a
# row, the ASCII row takes a copy of the other's suppressions; the other row keeps its deliveries
# (the log lists them under the spelling they were sent to) and is used by no new send.

import idna
from django.db import migrations
from django.db.models import Q

# Rows read per round: bounded memory whatever the table's size.
CHUNK = 1000


def ascii_spelling(address):
    """normalize_email_address's domain rule (emailsender.addresses.ascii_domain) as it is when this
    migration is written; an address whose domain has no ASCII spelling is returned unchanged."""
    local, at, domain = address.rpartition("@")
    lowered = domain.lower()
    if not at or (domain.isascii() and not any(label.startswith("xn--") for label in lowered.split("."))):
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return address


def recipients_ascii_domains(apps, schema_editor):
    Recipient = apps.get_model("emails", "Recipient")
    Suppression = apps.get_model("emails", "Suppression")
    # A Unicode domain, or a punycode one that may not be in its one form.
    candidates = Recipient.objects.filter(Q(email__contains="xn--") | Q(email__regex=r"[^\x01-\x7f]"))
    last = 0
    while True:
        chunk = list(candidates.filter(pk__gt=last).order_by("pk").values_list("pk", "email")[:CHUNK])
        if not chunk:
            return
        last = chunk[-1][0]
        for pk, email in chunk:
            spelled = ascii_spelling(email)
            if spelled == email:
                continue
            existing = Recipient.objects.filter(email=spelled).values_list("pk", flat=True).first()
            if existing is None:
                Recipient.objects.filter(pk=pk).update(email=spelled)
                continue
            copies = [
                Suppression(
                    user_id=entry.user_id,
                    recipient_id=existing,
                    reason=entry.reason,
                    delivery_id=entry.delivery_id,
                    created=entry.created,
                )
                for entry in Suppression.objects.filter(recipient_id=pk)
            ]
            Suppression.objects.bulk_create(copies, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ("emails", "0012_click_links_without_secrets"),
    ]

    operations = [
        migrations.RunPython(recipients_ascii_domains, migrations.RunPython.noop),
    ]
