"""`unsubscribe` on sends and templates: a send's own value, else its template's, stored with the
email and shown in the log; refused while PUBLIC_BASE_URL is unset."""

import pytest

from emailsystem.emails.models import SentEmail
from emailsystem.emails.serializers.sending import UNSUBSCRIBE_NEEDS_BASE_URL
from emailsystem.emails.tests.factories import EmailTemplateFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/emails/sent-email/"
AD_HOC = {"recipients": ["a@example.com"], "subject": "s", "body": "b"}
CONTEXT = {"name": "Ada", "order": "42"}


@pytest.fixture
def public_url(settings):
    settings.PUBLIC_BASE_URL = "https://mail.example.com"


def sent(client, body):
    response = client.post(URL, body, format="json")
    assert response.status_code == 202, response.json()
    return SentEmail.objects.get(pk=response.json()["id"])


@pytest.mark.usefixtures("public_url")
def test_a_send_takes_its_own_value_else_the_templates_and_ad_hoc_content_has_none(user_client):
    listed = EmailTemplateFactory(unsubscribe=True)
    plain = EmailTemplateFactory()

    assert sent(user_client, {"recipients": ["a@example.com"], "template": listed.pk, "context": CONTEXT}).unsubscribe
    overridden = {"recipients": ["a@example.com"], "template": listed.pk, "context": CONTEXT, "unsubscribe": False}
    assert sent(user_client, overridden).unsubscribe is False
    as_null = {"recipients": ["a@example.com"], "template": listed.pk, "context": CONTEXT, "unsubscribe": None}
    assert sent(user_client, as_null).unsubscribe is True
    opted_in = {"recipients": ["a@example.com"], "template": plain.pk, "context": CONTEXT, "unsubscribe": True}
    assert sent(user_client, opted_in).unsubscribe is True
    assert sent(user_client, AD_HOC).unsubscribe is False
    assert sent(user_client, {**AD_HOC, "unsubscribe": True}).unsubscribe is True


@pytest.mark.usefixtures("public_url")
def test_the_log_shows_whether_an_email_carried_the_link(user_client):
    email = sent(user_client, {**AD_HOC, "unsubscribe": True})

    assert user_client.get(URL).json()["results"][0]["unsubscribe"] is True
    assert user_client.get(f"{URL}{email.pk}/").json()["unsubscribe"] is True


def test_without_public_base_url_a_send_asking_for_the_link_is_a_400_naming_the_field(user_client, settings):
    settings.PUBLIC_BASE_URL = ""
    listed = EmailTemplateFactory(unsubscribe=True)

    asked = user_client.post(URL, {**AD_HOC, "unsubscribe": True}, format="json")
    inherited = user_client.post(URL, {"recipients": ["a@example.com"], "template": listed.pk}, format="json")

    assert asked.status_code == inherited.status_code == 400
    assert asked.json() == inherited.json() == {"unsubscribe": [UNSUBSCRIBE_NEEDS_BASE_URL]}
    assert not SentEmail.objects.exists()
    declined = {"recipients": ["a@example.com"], "template": listed.pk, "context": CONTEXT, "unsubscribe": False}
    assert user_client.post(URL, declined, format="json").status_code == 202


def test_a_value_that_is_not_a_boolean_is_a_400(user_client, settings):
    settings.PUBLIC_BASE_URL = "https://mail.example.com"

    response = user_client.post(URL, {**AD_HOC, "unsubscribe": "perhaps"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"unsubscribe": ["Must be a valid boolean."]}


@pytest.mark.usefixtures("public_url")
def test_batch_messages_take_the_field_like_single_sends(user_client):
    listed = EmailTemplateFactory(unsubscribe=True)
    messages = [
        {**AD_HOC, "unsubscribe": True},
        {"recipients": ["b@example.com"], "template": listed.pk, "context": CONTEXT},
        {"recipients": ["c@example.com"], "template": listed.pk, "context": CONTEXT, "unsubscribe": False},
        AD_HOC,
    ]

    response = user_client.post("/api/v1/emails/batch/", {"messages": messages}, format="json")

    assert response.status_code == 202, response.json()
    ids = [result["id"] for result in response.json()["results"]]
    stored = dict(SentEmail.objects.values_list("pk", "unsubscribe"))
    assert [stored[pk] for pk in ids] == [True, True, False, False]


def test_a_batch_message_asking_for_the_link_without_public_base_url_is_refused_under_its_index(user_client, settings):
    settings.PUBLIC_BASE_URL = ""

    response = user_client.post(
        "/api/v1/emails/batch/", {"messages": [AD_HOC, {**AD_HOC, "unsubscribe": True}]}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"messages": {"1": {"unsubscribe": [UNSUBSCRIBE_NEEDS_BASE_URL]}}}
    assert not SentEmail.objects.exists()


def test_admins_set_it_on_a_template_and_anyone_reads_it(admin_client_api, api_client, settings):
    settings.PUBLIC_BASE_URL = ""  # a template may ask for it before the operator sets the address
    new = {"name": "newsletter", "subject": "News", "body": "Hello", "unsubscribe": True}

    created = admin_client_api.post("/api/v1/emails/email-template/", new, format="json")

    assert created.status_code == 201, created.json()
    assert api_client.get(f"/api/v1/emails/email-template/{created.json()['id']}/").json()["unsubscribe"] is True
    default = {"name": "third", "subject": "s", "body": "b"}
    assert (
        admin_client_api.post("/api/v1/emails/email-template/", default, format="json").json()["unsubscribe"] is False
    )
