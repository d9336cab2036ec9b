"""The browsable API's pages for the batch and template tools: they render, with a form to post."""

import pytest
from django.test import Client

from emailsystem.emails.tests.factories import EmailTemplateFactory
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HTML = {"HTTP_ACCEPT": "text/html"}


@pytest.mark.parametrize("path", ["/api/v1/emails/batch/", "/api/v1/emails/email-template/validate/", "preview"])
def test_the_post_only_pages_show_a_form_to_a_browser(path):
    browser = Client()
    browser.force_login(UserFactory(is_staff=True, is_superuser=True))
    if path == "preview":
        path = f"/api/v1/emails/email-template/{EmailTemplateFactory().pk}/preview/"

    page = browser.get(path, **HTML)

    assert page.status_code == 405
    assert "<form" in page.content.decode()
