# Addresses are stored with their domain in its one ASCII spelling (users.models.normalize_email_address),
# and log-in looks them up in it. Accounts registered before keep a Unicode domain (anna@café.example)
# that log-in would no longer find: this writes them in the ASCII spelling (anna@xn--caf-dma.example),
# their verified address with them. An account whose ASCII spelling another account already has is
# left as it is and its id printed: which of two accounts keeps the address is a person's decision.

import idna
from django.db import migrations
from django.db.models import Q


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


def users_ascii_domains(apps, schema_editor):
    User = apps.get_model("users", "User")
    # Accounts are few: read at once. A Unicode domain, or a punycode one that may not be in its one form.
    candidates = list(
        User.objects.filter(Q(email__contains="xn--") | Q(email__regex=r"[^\x01-\x7f]")).values_list(
            "pk", "email", "verified_email"
        )
    )
    left = []
    for pk, email, verified_email in candidates:
        spelled = ascii_spelling(email)
        if spelled == email:
            continue
        if User.objects.filter(email=spelled).exclude(pk=pk).exists():
            left.append(pk)
            continue
        changes = {"email": spelled}
        if verified_email == email:
            changes["verified_email"] = spelled
        User.objects.filter(pk=pk).update(**changes)
    if left:
        print(
            "\n  users.0005: these accounts keep their Unicode spelling, another account has its ASCII one"
            f" (user ids): {', '.join(str(pk) for pk in left)}"
        )


class Migration(migrations.Migration):

    dependencies = [
        ("users", "0004_api_key"),
    ]

    operations = [
        migrations.RunPython(users_ascii_domains, migrations.RunPython.noop),
    ]
