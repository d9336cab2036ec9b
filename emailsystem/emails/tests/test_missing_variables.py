"""A send whose context lacks a variable the template prints is refused, naming the variable."""

import pytest

from emailsystem.emails.models import OutboxMessage, SentEmail
from emailsystem.emails.tests.factories import EmailTemplateFactory

SENDS = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db


def send(client, template, context=None):
    body = {"recipients": ["a@example.com"], "template": template.pk}
    if context is not None:
        body["context"] = context
    return client.post(SENDS, body, format="json")


def test_a_missing_variable_is_a_400_naming_it_and_nothing_is_written(user_client):
    template = EmailTemplateFactory(subject="Hello {{ name }}", body="Hi {{ name }}, welcome aboard.", html_body="")

    response = send(user_client, template)

    assert response.status_code == 400
    assert response.json()["context"] == ["The template uses variables the context does not give: name."]
    assert not SentEmail.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_every_missing_variable_of_every_part_is_named_once(user_client):
    template = EmailTemplateFactory(
        subject="Order {{ order.id }}",
        body="Hi {{ name|title }}, {{ order.id }} ships to {{ address.city }}.",
        html_body="<p>{{ total|floatformat:2 }}</p>",
    )

    response = send(user_client, template, {"address": {"street": "Main St"}})

    assert response.json()["context"] == [
        "The template uses variables the context does not give: order.id, name, address.city, total."
    ]


def test_a_missing_filter_argument_is_named(user_client):
    template = EmailTemplateFactory(subject="Total {{ total|add:shipping }}", body="b", html_body="")

    response = send(user_client, template, {"total": 5})

    assert response.status_code == 400
    assert response.json()["context"] == ["The template uses variables the context does not give: shipping."]


def test_a_missing_attribute_of_a_loop_item_is_named(user_client):
    template = EmailTemplateFactory(subject="Items", body="{% for i in items %}{{ i.name }};{% endfor %}", html_body="")

    response = send(user_client, template, {"items": [{"name": "pen"}, {"price": 2}]})

    assert response.json()["context"] == ["The template uses variables the context does not give: i.name."]


@pytest.mark.parametrize(
    "body",
    [
        "Hi{% if name %} {{ name }}{% endif %}.",
        "Hi {{ name|default:'there' }}.",
        "{% for line in lines %}{{ line }}{% endfor %}Hi.",
    ],
)
def test_variables_the_template_treats_as_optional_may_be_missing(user_client, body):
    template = EmailTemplateFactory(subject="Hello", body=body, html_body="")

    response = send(user_client, template, {})

    assert response.status_code == 202, response.json()


def test_a_template_that_allows_missing_variables_renders_them_empty(user_client):
    template = EmailTemplateFactory(
        subject="Hello {{ name }}", body="Hi {{ name }}, welcome aboard.", html_body="", allow_missing_variables=True
    )

    response = send(user_client, template)

    assert response.status_code == 202
    stored = SentEmail.objects.get()
    assert (stored.subject, stored.body) == ("Hello", "Hi , welcome aboard.")


def test_admins_set_allow_missing_variables_through_the_api(admin_client_api):
    created = admin_client_api.post(
        "/api/v1/emails/email-template/",
        {"name": "digest", "subject": "Digest", "body": "{{ intro }}", "allow_missing_variables": True},
        format="json",
    )

    assert created.status_code == 201
    assert created.json()["allow_missing_variables"] is True
    default = admin_client_api.post(
        "/api/v1/emails/email-template/", {"name": "plain", "subject": "s", "body": "b"}, format="json"
    )
    assert default.json()["allow_missing_variables"] is False
