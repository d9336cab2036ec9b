# Click events recorded before webhooks/parsing.link_without_secrets kept the whole clicked URL,
# whose query, fragment or user:password@ may hold tokens. This stores them as new click events
# are stored: scheme, host, port and path.

import urllib.parse

from django.db import migrations
from django.db.models import Q

# Rows read and written per round: bounded memory whatever the table's size.
CHUNK = 1000


def link_without_secrets(url):
    """webhooks/parsing.link_without_secrets as it is when this migration is written."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return ""
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def strip_click_links(apps, schema_editor):
    DeliveryEvent = apps.get_model("emails", "DeliveryEvent")
    clicks = DeliveryEvent.objects.filter(event="click").filter(
        Q(detail__contains="?") | Q(detail__contains="#") | Q(detail__contains="@")
    )
    last = 0
    while True:
        chunk = list(clicks.filter(pk__gt=last).order_by("pk").only("pk", "detail")[:CHUNK])
        if not chunk:
            return
        last = chunk[-1].pk
        changed = []
        for event in chunk:
            stripped = link_without_secrets(event.detail)
            if stripped != event.detail:
                event.detail = stripped
                changed.append(event)
        DeliveryEvent.objects.bulk_update(changed, ["detail"])


class Migration(migrations.Migration):

    dependencies = [
        ("emails", "0011_unsubscribe"),
    ]

    operations = [
        migrations.RunPython(strip_click_links, migrations.RunPython.noop),
    ]
