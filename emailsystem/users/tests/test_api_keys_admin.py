"""API keys in the admin: every user's keys listed and searchable, revocable, never shown or issued there."""

import pytest
from django.test import Client

from emailsystem.users.models import ApiKeyScope
from emailsystem.users.tests.factories import UserFactory, api_key_issue, bearer

CHANGELIST = "/admin/users/apikey/"
LOG = "/api/v1/emails/sent-email/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def test_the_list_shows_every_users_keys_and_never_a_key_or_its_digest(browser, user, other_user):
    mine = api_key_issue(user, name="billing-app")
    theirs = api_key_issue(other_user, ApiKeyScope.FULL, name="ops-console")

    page = browser.get(CHANGELIST).content.decode()

    for issued in (mine, theirs):
        assert issued.api_key.prefix in page and issued.api_key.name in page
        assert issued.key not in page and issued.api_key.key_hash not in page
    assert user.email in page and other_user.email in page


def test_the_search_finds_keys_by_owner_name_and_prefix(browser):
    ada, bob = UserFactory(email="ada@example.com"), UserFactory(email="bob@example.com")
    adas = api_key_issue(ada, name="billing-app")
    bobs = api_key_issue(bob, name="newsletter")

    by_owner = browser.get(CHANGELIST, {"q": "ada@example.com"}).content.decode()
    by_prefix = browser.get(CHANGELIST, {"q": bobs.api_key.prefix}).content.decode()

    assert adas.api_key.prefix in by_owner and bobs.api_key.prefix not in by_owner
    assert bobs.api_key.prefix in by_prefix and adas.api_key.prefix not in by_prefix


def test_an_admin_revokes_keys_and_they_are_401_at_once(browser, user):
    issued = api_key_issue(user)
    kept = api_key_issue(user, name="kept")
    assert bearer(issued.key).get(LOG).status_code == 200

    page = browser.post(CHANGELIST, {"action": "revoke", "_selected_action": [issued.api_key.pk]}, follow=True)

    assert "Revoked 1 API key(s)." in page.content.decode()
    assert bearer(issued.key).get(LOG).status_code == 401
    assert bearer(kept.key).get(LOG).status_code == 200
    revoked_only = browser.get(CHANGELIST, {"revoked": "yes"}).content.decode()
    assert issued.api_key.prefix in revoked_only and kept.api_key.prefix not in revoked_only
    live_only = browser.get(CHANGELIST, {"revoked": "no"}).content.decode()
    assert kept.api_key.prefix in live_only and issued.api_key.prefix not in live_only


def test_keys_are_not_issued_in_the_admin(browser, user):
    issued = api_key_issue(user)

    assert browser.get(f"{CHANGELIST}add/").status_code == 403
    assert "Add API key" not in browser.get(CHANGELIST).content.decode()
    change = browser.get(f"{CHANGELIST}{issued.api_key.pk}/change/").content.decode()
    assert issued.api_key.prefix in change and issued.api_key.key_hash not in change
    assert 'name="name"' not in change  # every field is read-only


def test_only_staff_see_the_keys(user):
    api_key_issue(user)
    client = Client()
    client.force_login(user)

    assert client.get(CHANGELIST).status_code == 302
