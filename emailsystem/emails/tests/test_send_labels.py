"""A send's `tags` and `metadata`: validated, stored, in the log and its `tag` filter, and at SendGrid."""

import pytest

from emailsystem.emails.models import OutboxMessage, SentEmail, SentEmailTag
from emailsystem.emails.tests.delivering import deliver_queued

pytestmark = pytest.mark.django_db
URL = "/api/v1/emails/sent-email/"


def send(client, **fields):
    return client.post(URL, {"recipients": ["a@example.com"], "subject": "s", "body": "b", **fields}, format="json")


def test_tags_and_metadata_are_stored_and_returned_in_the_log_list_and_detail(user_client):
    response = send(user_client, tags=["invoice", "eu:west", "invoice"], metadata={"order": "42", "note": ""})

    assert response.status_code == 202, response.json()
    detail = user_client.get(f"{URL}{response.json()['id']}/").json()
    assert detail["tags"] == ["invoice", "eu:west"]  # a repeated tag counts once
    assert detail["metadata"] == {"order": "42", "note": ""}
    [listed] = user_client.get(URL).json()["results"]
    assert listed["tags"] == ["invoice", "eu:west"]
    assert listed["metadata"] == {"order": "42", "note": ""}


def test_the_tag_filter_finds_emails_with_any_of_the_tags(user_client, admin_client_api):
    first = send(user_client, tags=["invoice"]).json()["id"]
    second = send(user_client, tags=["receipt", "eu"]).json()["id"]
    send(user_client, tags=["other"])
    send(user_client)
    send(admin_client_api, tags=["invoice"])  # someone else's: never listed

    def ids(query):
        response = user_client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.json()
        return [item["id"] for item in response.json()["results"]]

    assert ids("tag=invoice") == [first]
    assert ids("tag=invoice&tag=eu") == [second, first]
    assert ids("tag=invoice,receipt") == [second, first]
    assert ids("tag=nothing") == []


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"tags": ["ok", "has space"]}, {"tags": {"1": ["A tag holds only letters, digits and _ . : - (no spaces)."]}}),
        ({"tags": ["ok", ""]}, {"tags": {"1": ["This field may not be blank."]}}),
        ({"tags": ["x" * 51]}, {"tags": {"0": ["Ensure this field has no more than 50 characters."]}}),
        ({"tags": [f"t{i}" for i in range(11)]}, {"tags": ["Ensure this field has no more than 10 elements."]}),
        ({"tags": [7]}, {"tags": {"0": ["Not a valid string."]}}),
        ({"tags": "invoice"}, {"tags": ['Expected a list of items but got type "str".']}),
        ({"metadata": {"order": 42}}, {"metadata": {"order": ["Not a valid string."]}}),
        ({"metadata": {"k": "v" * 501}}, {"metadata": {"k": ["Ensure this field has no more than 500 characters."]}}),
        ({"metadata": {"k" * 51: "v"}}, {"metadata": {"k" * 51: ["A metadata key has 1 to 50 characters."]}}),
        (
            {"metadata": {"email_id": "1"}},
            {"metadata": {"email_id": ["'email_id' is reserved: the service sends its own ids under it."]}},
        ),
        ({"metadata": {f"k{i}": "v" for i in range(11)}}, {"metadata": ["At most 10 keys (got 11)."]}),
        ({"metadata": ["a"]}, {"metadata": ['Expected a dictionary of items but got type "list".']}),
    ],
)
def test_bad_tags_or_metadata_are_a_400_naming_the_field_and_index_and_nothing_is_written(user_client, fields, errors):
    response = send(user_client, **fields)

    assert response.status_code == 400
    assert response.json() == errors
    assert not SentEmail.objects.exists()
    assert not SentEmailTag.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_sendgrid_receives_tags_as_categories_and_metadata_as_custom_args_beside_the_ids(user_client, fake, settings):
    response = send(
        user_client, recipients=["a@example.com", "b@example.com"], tags=["invoice", "eu"], metadata={"order": "42"}
    )
    email = SentEmail.objects.get(pk=response.json()["id"])

    deliver_queued(fake=fake, settings=settings)

    [request] = fake.requests
    assert request.status == 202
    assert request.body["categories"] == ["invoice", "eu"]
    assert request.body["custom_args"] == {"order": "42"}
    assert [p["custom_args"] for p in request.body["personalizations"]] == [
        {"delivery_id": str(delivery_id), "email_id": str(email.pk)}
        for delivery_id in email.deliveries.order_by("pk").values_list("pk", flat=True)
    ]


def test_a_send_without_labels_sends_neither_categories_nor_custom_args(user_client, fake, settings):
    send(user_client)

    deliver_queued(fake=fake, settings=settings)

    [request] = fake.requests
    assert "categories" not in request.body
    assert "custom_args" not in request.body
