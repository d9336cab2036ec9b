"""Trying templates out through the API: preview with a context, and the template check."""

import pytest
from django.contrib.auth.models import Permission

from emailsystem.conftest import token_client
from emailsystem.emails.models import EmailTemplate, IdempotencyRecord, SentEmail
from emailsystem.emails.tests.factories import EmailTemplateFactory
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
VALIDATE = "/api/v1/emails/email-template/validate/"


def preview_url(template):
    return f"/api/v1/emails/email-template/{template.pk}/preview/"


def test_a_preview_renders_what_a_send_would_send(user_client):
    template = EmailTemplateFactory(
        subject="Order {{ order.id }}", body="Hi {{ name }}", html_body="<p>{{ name }} & {{ note }}</p>"
    )
    context = {"order": {"id": 7}, "name": "Ada", "note": "<b>"}

    response = user_client.post(preview_url(template), {"context": context}, format="json")
    sent = user_client.post(
        "/api/v1/emails/sent-email/",
        {"recipients": ["a@example.com"], "template": template.pk, "context": context},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {"subject": "Order 7", "body": "Hi Ada", "html_body": "<p>Ada & &lt;b&gt;</p>"}
    email = SentEmail.objects.get(pk=sent.json()["id"])
    assert [email.subject, email.body, email.html_body] == list(response.json().values())


def test_a_preview_missing_a_variable_gets_the_sends_400_and_stores_nothing(user_client):
    template = EmailTemplateFactory(subject="Hi {{ name }}", body="Order {{ order.id }}")
    send = {"recipients": ["a@example.com"], "template": template.pk, "context": {"name": "Ada"}}

    response = user_client.post(preview_url(template), {"context": {"name": "Ada"}}, format="json")

    assert response.status_code == 400
    assert response.json() == user_client.post("/api/v1/emails/sent-email/", send, format="json").json()
    assert "order.id" in response.json()["context"][0]
    assert SentEmail.objects.count() == 0 and IdempotencyRecord.objects.count() == 0


def test_a_preview_with_a_render_error_is_400_naming_the_context(user_client):
    template = EmailTemplateFactory(subject="Hi", body="{% for x in items %}{{ x }}{% endfor %}")

    response = user_client.post(preview_url(template), {"context": {"items": 5}}, format="json")

    assert response.status_code == 400
    assert "cannot be rendered" in response.json()["context"][0]


def test_a_template_allowing_missing_variables_previews_them_empty(user_client):
    template = EmailTemplateFactory(subject="Hi {{ name }}!", body="b", allow_missing_variables=True)

    response = user_client.post(preview_url(template), {}, format="json")

    assert response.status_code == 200
    assert response.json()["subject"] == "Hi !"


@pytest.mark.parametrize("context", [[1], "text", {"a": "\0"}])
def test_a_preview_context_is_checked_as_a_sends(user_client, template, context):
    response = user_client.post(preview_url(template), {"context": context}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["context"]


def test_a_preview_of_no_template_is_404(user_client):
    response = user_client.post("/api/v1/emails/email-template/999999/preview/", {}, format="json")

    assert response.status_code == 404


def test_validate_lists_the_variables_the_template_uses(admin_client_api):
    body = (
        "{% if customer.vip and not muted|default:quiet %}VIP{% endif %}"
        "{% for item in order.items %}{{ item.name }} {{ forloop.counter }} {{ item.price|add:shipping }}"
        "{% empty %}none{% endfor %}"
        "{% with total=order.total %}{{ total }}{% endwith %}{{ 'text' }}{{ 3 }}"
    )

    response = admin_client_api.post(
        VALIDATE, {"subject": "Hi {{ name }}", "body": body, "html_body": "<p>{{ name|upper }}</p>"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {
        "variables": ["customer.vip", "muted", "name", "order.items", "order.total", "quiet", "shipping"],
        "parts": {
            "subject": ["name"],
            "body": ["customer.vip", "muted", "order.items", "order.total", "quiet", "shipping"],
            "html_body": ["name"],
        },
    }
    assert EmailTemplate.objects.count() == 0


def test_validate_points_at_the_syntax_error_and_its_line(admin_client_api):
    body = "Hello\n{% for item in items %}\n{{ item }}\n{% endif %}"

    response = admin_client_api.post(VALIDATE, {"subject": "Hi", "body": body}, format="json")

    assert response.status_code == 400
    (message,) = response.json()["body"]
    assert message.startswith("Template syntax error (line 4):")
    assert "endif" in message


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"subject": "{{ a|nosuchfilter }}", "body": "b"}, "subject"),
        ({"subject": "s", "body": "b", "html_body": "{% load i18n %}"}, "html_body"),
        ({"subject": "a\nb", "body": "b"}, "subject"),
        ({"body": "b"}, "subject"),
        ({"subject": "s"}, "body"),
    ],
)
def test_validate_refuses_bad_templates_naming_the_part(admin_client_api, payload, field):
    response = admin_client_api.post(VALIDATE, payload, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_validate_needs_the_template_add_or_change_permission(user_client):
    clerk = UserFactory(is_staff=True)
    assert token_client(clerk).post(VALIDATE, {"subject": "s", "body": "b"}, format="json").status_code == 403
    assert user_client.post(VALIDATE, {"subject": "s", "body": "b"}, format="json").status_code == 403

    clerk.user_permissions.add(Permission.objects.get(codename="change_emailtemplate"))
    clerk = type(clerk).objects.get(pk=clerk.pk)  # permissions are cached per instance

    assert token_client(clerk).post(VALIDATE, {"subject": "s", "body": "b"}, format="json").status_code == 200
