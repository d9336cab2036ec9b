"""The log's `status` filter on a recipient-only status reads Delivery's partial index
`delivery_status_email`, not every delivery (docs/sending/log-filters.md, "At scale").

A table of a few rows is read sequentially whatever its indexes, so each query is planned with
sequential scans disabled: what is checked is that the index can serve the query (its
condition is proved from the filter's WHERE), not the planner's choice on this data.
"""

import pytest
from django.db import connection, transaction

from emailsystem.emails.filters import SentEmailFilter
from emailsystem.emails.models import RECIPIENT_ONLY_STATUSES, Delivery, DeliveryStatus, EmailStatus
from emailsystem.emails.selectors import sent_email_log_rows
from emailsystem.emails.tests.factories import sent_email

pytestmark = pytest.mark.django_db


def plans(user, status):
    """EXPLAIN of the list page's query and of its count, as the view makes them."""
    rows = SentEmailFilter({"status": status}, queryset=sent_email_log_rows(user=user)).qs
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        page = rows[:20].explain()
        count = rows.values("pk").order_by().explain()
    return page, count


@pytest.mark.parametrize("status", RECIPIENT_ONLY_STATUSES)
def test_a_recipient_only_status_is_found_through_the_index(user, status):
    email = sent_email(user=user, recipients=["a@example.com", "b@example.com"])
    Delivery.objects.filter(sent_email=email, recipient__email="a@example.com").update(status=status)

    page, count = plans(user, status)

    assert "delivery_status_email" in page
    assert "delivery_status_email" in count


def test_the_index_holds_only_recipient_only_statuses():
    index = next(index for index in Delivery._meta.indexes if index.name == "delivery_status_email")

    assert set(RECIPIENT_ONLY_STATUSES) == set(DeliveryStatus.values) - set(EmailStatus.values)
    assert index.condition.children == [("status__in", RECIPIENT_ONLY_STATUSES)]
