"""The send path's plain inserts write what Model.objects.create() would have written."""

import pytest
from django.utils import timezone

from emailsystem.core.plain_sql import instance_get, instance_get_by, instance_insert, rows_insert
from emailsystem.emails.models import Delivery, DeliveryStatus, EmailTemplate, Recipient, SentEmail
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_instance_insert_sets_the_primary_key_and_stores_every_field():
    user = UserFactory()
    email = instance_insert(
        SentEmail(sender=user, subject="Hi", body="Body", from_email=user.email, recipient_count=1, context={"a": [1]})
    )

    stored = SentEmail.objects.get(pk=email.pk)
    assert (stored.sender_id, stored.subject, stored.context) == (user.pk, "Hi", {"a": [1]})
    assert stored.status == "queued"  # the field's default
    assert stored.updated is not None  # auto_now filled in
    assert not email._state.adding


def test_rows_insert_returns_ids_in_order_and_fills_defaults():
    user = UserFactory()
    email = instance_insert(SentEmail(sender=user, subject="s", body="b", from_email=user.email, recipient_count=3))
    recipients = [Recipient.objects.create(email=f"r{n}@example.com") for n in range(3)]
    now = timezone.now()

    ids = rows_insert(Delivery, [{"sent_email_id": email.pk, "recipient_id": r.pk, "created": now} for r in recipients])

    stored = {d.pk: d for d in Delivery.objects.filter(pk__in=ids)}
    assert [stored[pk].recipient_id for pk in ids] == [r.pk for r in recipients]
    assert {(d.status, d.attempts, d.reason) for d in stored.values()} == {(DeliveryStatus.QUEUED, 0, "")}
    assert rows_insert(Delivery, []) == []


def test_rows_insert_splits_what_one_statement_could_not_carry(monkeypatch):
    from emailsystem.core import plain_sql

    monkeypatch.setattr(plain_sql, "MAX_PARAMETERS", 20)  # two Delivery rows per statement
    user = UserFactory()
    email = instance_insert(SentEmail(sender=user, subject="s", body="b", from_email=user.email, recipient_count=5))
    recipients = [Recipient.objects.create(email=f"c{n}@example.com") for n in range(5)]

    ids = rows_insert(Delivery, [{"sent_email_id": email.pk, "recipient_id": r.pk} for r in recipients])

    assert len(set(ids)) == 5
    assert [Delivery.objects.get(pk=pk).recipient_id for pk in ids] == [r.pk for r in recipients]


def test_instance_get_matches_the_orm():
    from emailsystem.emails.tests.factories import EmailTemplateFactory

    template = EmailTemplateFactory()

    fetched = instance_get(EmailTemplate, template.pk)

    expected = EmailTemplate.objects.get(pk=template.pk)
    assert [getattr(fetched, f.attname) for f in EmailTemplate._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in EmailTemplate._meta.concrete_fields
    ]
    assert instance_get(EmailTemplate, str(template.pk)).pk == template.pk
    assert instance_get(EmailTemplate, template.pk + 1000) is None
    assert instance_get(EmailTemplate, 10**30) is None  # beyond any key: not found, not a database error
    with pytest.raises(ValueError):
        instance_get(EmailTemplate, "seven")


def test_instance_get_converts_json_and_datetimes_as_the_orm_does():
    user = UserFactory()
    email = instance_insert(
        SentEmail(sender=user, subject="s", body="b", from_email=user.email, recipient_count=1, context={"k": ["v"]})
    )

    fetched = instance_get(SentEmail, email.pk)

    assert fetched.context == {"k": ["v"]}
    assert fetched.created == SentEmail.objects.get(pk=email.pk).created
    assert fetched.created.tzinfo is not None


def test_instance_get_takes_a_text_primary_key():
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=UserFactory())

    assert instance_get(Token, token.key).user_id == token.user_id
    assert instance_get(Token, "x" * 300) is None


def test_instance_get_by_reads_a_row_by_a_unique_field():
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=UserFactory())
    user = UserFactory()

    assert instance_get_by(Token, field="key", value=token.key).user_id == token.user_id
    assert instance_get_by(type(user), field="email", value=user.email).pk == user.pk
    assert instance_get_by(type(user), field="email", value="nobody@example.com") is None
    with pytest.raises(ValueError, match="not unique"):
        instance_get_by(type(user), field="first_name", value="Ada")
