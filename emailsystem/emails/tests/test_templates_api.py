"""Email templates: public to read; writes need staff status and the model's permission for
the action (as in the admin); refused when they do not compile."""

import pytest
from django.contrib.auth.models import Permission

from emailsystem.conftest import token_client
from emailsystem.emails.models import EmailTemplate
from emailsystem.emails.tests.factories import EmailTemplateFactory
from emailsystem.users.tests.factories import UserFactory

URL = "/api/v1/emails/email-template/"
pytestmark = pytest.mark.django_db

WRITES = [("post", False), ("put", True), ("patch", True), ("delete", True)]
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
        "unsubscribe",
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


@pytest.mark.parametrize(("method", "needs_pk"), WRITES)
def test_a_user_may_not_write_templates(user_client, template, method, needs_pk):
    response = getattr(user_client, method)(detail(template) if needs_pk else URL, NEW, format="json")

    assert response.status_code == 403
    assert EmailTemplate.objects.get().name == template.name


def staff_with(*codenames: str):
    """A staff member (not a superuser) holding only these permissions of emails.EmailTemplate."""
    person = UserFactory.create(is_staff=True)
    person.user_permissions.set(Permission.objects.filter(content_type__app_label="emails", codename__in=codenames))
    return person


@pytest.mark.parametrize(("method", "needs_pk"), WRITES)
def test_staff_without_the_models_permissions_may_not_write_templates(template, method, needs_pk):
    client = token_client(staff_with())
    before = list(EmailTemplate.objects.values())

    response = getattr(client, method)(detail(template) if needs_pk else URL, NEW, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "You do not have permission to perform this action."
    assert list(EmailTemplate.objects.values()) == before


def test_the_admin_refuses_staff_without_the_models_permissions_too(client, template):
    client.force_login(staff_with())

    assert client.get(f"/admin/emails/emailtemplate/{template.pk}/change/").status_code == 403
    assert client.get("/admin/emails/emailtemplate/add/").status_code == 403


def test_each_write_needs_its_own_permission(template):
    adder = token_client(staff_with("add_emailtemplate"))
    changer = token_client(staff_with("change_emailtemplate"))
    deleter = token_client(staff_with("delete_emailtemplate"))

    assert adder.post(URL, NEW, format="json").status_code == 201
    assert adder.patch(detail(template), {"subject": "By the adder"}, format="json").status_code == 403
    assert adder.delete(detail(template)).status_code == 403
    assert changer.post(URL, {**NEW, "name": "by-the-changer"}, format="json").status_code == 403
    assert changer.patch(detail(template), {"subject": "By the changer"}, format="json").status_code == 200
    assert changer.put(detail(template), {**NEW, "name": "renamed"}, format="json").status_code == 200
    assert changer.delete(detail(template)).status_code == 403
    assert deleter.patch(detail(template), {"subject": "By the deleter"}, format="json").status_code == 403
    assert deleter.delete(detail(template)).status_code == 204
    assert list(EmailTemplate.objects.values_list("name", flat=True)) == [NEW["name"]]


def test_a_non_staff_user_holding_the_permissions_may_not_write_templates(template):
    holder = UserFactory()
    holder.user_permissions.set(
        Permission.objects.filter(content_type__app_label="emails", codename__endswith="_emailtemplate")
    )

    assert token_client(holder).post(URL, NEW, format="json").status_code == 403
    assert EmailTemplate.objects.count() == 1


@pytest.mark.parametrize(("method", "needs_pk"), WRITES)
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
