"""The admin dashboard's reads and page: counts, statuses as they come, domains, queues, staff only."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from emailsender import topology
from emailsystem.emails import dashboard
from emailsystem.emails.models import Delivery, DeliveryStatus, SentEmail
from emailsystem.emails.tests.factories import sent_email
from emailsystem.emails.tests.test_delivery_broker import dispatched
from emailsystem.users.tests.factories import UserFactory

PAGE = "/admin/dashboard/"


def backdate(email: SentEmail, hours: float) -> None:
    moment = timezone.now() - datetime.timedelta(hours=hours)
    SentEmail.objects.filter(pk=email.pk).update(created=moment)
    Delivery.objects.filter(sent_email=email).update(created=moment)


@pytest.mark.django_db
def test_sends_per_hour_counts_the_window_and_leaves_out_older_emails(user):
    sent_email(user=user, recipients=["a@example.com", "b@example.com"])
    backdate(sent_email(user=user), hours=30)
    backdate(sent_email(user=user), hours=24 * 8)  # outside the 7 days
    hours = dashboard.sends_per_hour()
    assert len(hours) == 168
    assert sum(row["emails"] for row in hours) == 2 and sum(row["recipients"] for row in hours) == 3
    assert hours[-1]["emails"] == 1


@pytest.mark.django_db
def test_outcomes_are_grouped_by_whatever_statuses_exist_so_new_ones_show_without_a_change(user):
    email = sent_email(user=user, recipients=["a@x.com", "b@x.com", "c@x.com", "d@x.com"])
    first, second, third, _fourth = Delivery.objects.filter(sent_email=email).order_by("pk")
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.SENT)
    Delivery.objects.filter(pk=second.pk).update(status=DeliveryStatus.FAILED)
    Delivery.objects.filter(pk=third.pk).update(status="bounced")  # a status this code has never heard of
    days, series = dashboard.outcomes_per_day()
    assert len(days) == 7
    assert {name: sum(values) for name, values in series.items()} == {"queued": 1, "sent": 1, "failed": 1, "bounced": 1}
    assert series["bounced"][-1] == 1 and list(series)[-1] == "bounced"  # known statuses first


@pytest.mark.django_db
def test_domains_rank_by_failures_and_by_time_to_sendgrid(user):
    # Mixed case on purpose: domains are compared lower-cased.
    slow_addresses = [f"u{n}@Slow.example" for n in range(5)]
    email = sent_email(user=user, recipients=slow_addresses + [f"v{n}@ok.example" for n in range(6)])
    for delivery in Delivery.objects.filter(sent_email=email).select_related("recipient"):
        address = delivery.recipient.email
        failed = address == "v0@ok.example"
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED if failed else DeliveryStatus.SENT,
            sent_at=None
            if failed
            else email.created + datetime.timedelta(seconds=9 if address in slow_addresses else 1),
        )
    assert [(row["domain"], row["failed"], row["total"]) for row in dashboard.domains_most_failing()] == [
        ("ok.example", 1, 6)
    ]
    slowest = dashboard.domains_slowest()
    assert [row["domain"] for row in slowest] == ["slow.example", "ok.example"]
    assert slowest[0]["seconds"] == pytest.approx(9.0)


@pytest.mark.django_db
def test_bounces_and_drops_count_as_failures_of_their_domain_and_suppressions_do_not(user):
    email = sent_email(user=user, recipients=[f"r{n}@bouncy.example" for n in range(6)])
    statuses = [
        DeliveryStatus.BOUNCED,
        DeliveryStatus.DROPPED,
        DeliveryStatus.FAILED,
        DeliveryStatus.SUPPRESSED,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.OPENED,
    ]
    for delivery, status in zip(Delivery.objects.filter(sent_email=email).order_by("pk"), statuses, strict=True):
        Delivery.objects.filter(pk=delivery.pk).update(status=status)

    [row] = dashboard.domains_most_failing()

    assert (row["domain"], row["failed"], row["total"]) == ("bouncy.example", 3, 6)


@pytest.mark.django_db
def test_the_page_is_for_staff_only(client, user, admin):
    assert client.get(PAGE).status_code == 302
    client.force_login(user)
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(admin)
    response = client.get(PAGE)
    assert response.status_code == 200
    assert b"Embedded mode" in response.content
    assert response.content.count(b'<svg role="img"') == 2  # the two charts (the admin has icon sprites too)
    assert b'href="/admin/dashboard/"' in client.get("/admin/").content


@pytest.mark.django_db
def test_staff_without_the_view_permissions_are_refused_and_see_no_link(client):
    clerk = UserFactory(is_staff=True)
    client.force_login(clerk)

    assert client.get(PAGE).status_code == 403
    assert b'href="/admin/dashboard/"' not in client.get("/admin/").content

    clerk.user_permissions.set(
        Permission.objects.filter(content_type__app_label="emails", codename__in=["view_sentemail", "view_delivery"])
    )
    clerk = type(clerk).objects.get(pk=clerk.pk)  # permissions are cached on the instance
    client.force_login(clerk)
    assert client.get(PAGE).status_code == 200
    assert b'href="/admin/dashboard/"' in client.get("/admin/").content


@pytest.mark.django_db(transaction=True)
@pytest.mark.rabbitmq
def test_in_broker_mode_the_page_shows_every_queue_with_its_depth(broker, client, admin, user):
    sent_email(user=user)
    sent_email(user=user)
    dispatched()
    client.force_login(admin)
    page = client.get(PAGE).content.decode()
    assert "Embedded mode" not in page
    for name in topology.all_queues(broker.prefix, topology.DEFAULT_RETRY_DELAYS_MS):
        assert f"<td>{name}</td>" in page
    work = next(queue for queue in dashboard.queue_depths() if queue.name == topology.work_queue(broker.prefix))
    assert (work.messages, work.consumers, work.error) == (2, 0, "")
