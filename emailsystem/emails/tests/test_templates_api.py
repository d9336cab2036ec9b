"""Email templates: public to read, admin-only to write, refused when they do not compile."""

import pytest

from emailsystem.emails.models import EmailTemplate
from emailsystem.emails.tests.factories import EmailTemplateFactory

URL = "/api/v1/emails/email-template/"
pytestmark = pytest.mark.django_db

NEW = {"name": "welcome", "subject": "Welcome {{ name }}", "body": "Hi {{ name }}", "html_body": "<p>Hi</p>"}


def detail(template):
    return f"{URL}{template.pk}/"


def test_anyone_lists_templates_paginated(api_client):
    EmailTemplateFactory.create_batch(3)

    response = api_client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert set(body["results"][0]) == {
        "id",
        "name",
        "subject",
        "body",
        "html_body",
        "allow_missing_variables",
        "created",
        "modified",
    }


def test_anyone_reads_one_template(api_client, template):
    response = api_client.get(detail(template))

    assert response.status_code == 200
    assert response.json()["name"] == template.name


def test_an_admin_creates_a_template(admin_client_api):
    response = admin_client_api.post(URL, NEW, format="json")

    assert response.status_code == 201
    assert EmailTemplate.objects.get(pk=response.json()["id"]).subject == NEW["subject"]


def test_html_body_is_optional(admin_client_api):
    response = admin_client_api.post(URL, {k: v for k, v in NEW.items() if k != "html_body"}, format="json")

    assert response.status_code == 201
    assert response.json()["html_body"] == ""


def test_an_admin_updates_patches_and_deletes(admin_client_api, template):
    put = admin_client_api.put(detail(template), {**NEW, "name": "renamed"}, format="json")
    patch = admin_client_api.patch(detail(template), {"subject": "New {{ x }}"}, format="json")
    delete = admin_client_api.delete(detail(template))

    assert (put.status_code, patch.status_code, delete.status_code) == (200, 200, 204)
    assert put.json()["name"] == "renamed"
    assert patch.json()["subject"] == "New {{ x }}"
    assert not EmailTemplate.objects.exists()


@pytest.mark.parametrize(("method", "needs_pk"), [("post", False), ("put", True), ("patch", True), ("delete", True)])
def test_a_user_may_not_write_templates(user_client, template, method, needs_pk):
    response = getattr(user_client, method)(detail(template) if needs_pk else URL, NEW, format="json")

    assert response.status_code == 403
    assert EmailTemplate.objects.get().name == template.name


@pytest.mark.parametrize(("method", "needs_pk"), [("post", False), ("put", True), ("patch", True), ("delete", True)])
def test_anonymous_writes_get_401(api_client, template, method, needs_pk):
    response = getattr(api_client, method)(detail(template) if needs_pk else URL, NEW, format="json")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert EmailTemplate.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "source"),
    [
        ("subject", "Hello {{ name|no_such_filter }}"),
        ("body", "{% if %}"),
        ("html_body", "{% for x in %}{% endfor %}"),
        ("body", "{% include 'secrets.txt' %}"),
        ("body", "{% load static %}"),
        ("body", "{% debug %}"),
        ("body", "{% url 'admin:index' %}"),
    ],
)
def test_a_template_that_does_not_compile_is_refused(admin_client_api, field, source):
    response = admin_client_api.post(URL, {**NEW, field: source}, format="json")

    assert response.status_code == 400
    assert "Template syntax error" in response.json()[field][0]
    assert not EmailTemplate.objects.exists()


def test_a_subject_with_a_line_break_is_refused(admin_client_api):
    response = admin_client_api.post(URL, {**NEW, "subject": "Hi\r\nBcc: everyone@example.com"}, format="json")

    assert response.status_code == 400
    assert "subject" in response.json()


def test_template_names_are_unique(admin_client_api, template):
    response = admin_client_api.post(URL, {**NEW, "name": template.name}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()


def test_an_unknown_template_is_404(api_client):
    assert api_client.get(f"{URL}999999/").status_code == 404
