"""Sender identity in the admin: an admin grants or revokes an address, and a changed address is unverified.

The change form is submitted as a browser would: every field's value as the page drew it, with
the admin's edits on top.
"""

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


class _FormValues(HTMLParser):
    """The values a browser submits for `<form id="user_form">` as drawn (ticked boxes, selected options)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form" and attributes.get("id") == "user_form":
            self._in_form = True
        if not self._in_form or "disabled" in attributes:
            return
        name = attributes.get("name")
        if tag == "input" and name and attributes.get("type") not in {"submit", "button"}:
            checkbox = attributes.get("type") == "checkbox"
            if not checkbox or "checked" in attributes:
                self.values.setdefault(name, []).append(attributes.get("value", "on" if checkbox else ""))
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attributes:
            self.values.setdefault(self._select, []).append(attributes.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = [""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea][0] += data


def change_user(browser: Client, user, **edits) -> None:
    """Open the user's admin page, change `edits` (True/False ticks or untick a box) and save."""
    path = f"/admin/users/user/{user.pk}/change/"
    page = browser.get(path)
    assert page.status_code == 200
    parser = _FormValues()
    parser.feed(page.content.decode())
    data = parser.values
    for name, value in edits.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = ["on" if value is True else value]
    saved = browser.post(path, data)
    assert saved.status_code == 302, re.findall(r'<ul class="errorlist[^"]*"[^>]*>.*?</ul>', saved.content.decode())


@pytest.fixture
def browser(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def test_an_admin_ticks_an_address_verified_and_unticks_it(browser):
    user = UserFactory(unverified=True)

    change_user(browser, user, email_verified=True)
    assert get_user_model().objects.get(pk=user.pk).email_verified

    change_user(browser, user, email_verified=False)
    assert not get_user_model().objects.get(pk=user.pk).email_verified


def test_changing_a_users_email_in_the_admin_unverifies_it(browser):
    user = UserFactory(email="ceo@example.org")
    assert user.email_verified

    change_user(browser, user, email="someone@example.org")

    changed = get_user_model().objects.get(pk=user.pk)
    assert changed.email == "someone@example.org"
    assert not changed.email_verified
    page = browser.get(f"/admin/users/user/{user.pk}/change/").content.decode()
    parser = _FormValues()
    parser.feed(page)
    assert 'name="email_verified"' in page and "email_verified" not in parser.values, "the box shows unticked"


def test_changing_the_email_and_ticking_the_box_grants_the_new_address(browser):
    user = UserFactory(unverified=True)

    change_user(browser, user, email="new@example.org", email_verified=True)

    assert get_user_model().objects.get(pk=user.pk).verified_email == "new@example.org"


def test_an_admin_verifies_addresses_with_the_list_action(browser):
    users = [UserFactory(unverified=True), UserFactory(unverified=True)]

    page = browser.post(
        "/admin/users/user/",
        {"action": "verify_addresses", "_selected_action": [user.pk for user in users]},
        follow=True,
    )

    assert "Verified 2 address(es)." in page.content.decode()
    assert all(get_user_model().objects.get(pk=user.pk).email_verified for user in users)


def test_an_admin_creates_a_verified_user_in_one_step(browser):
    response = browser.post(
        "/admin/users/user/add/",
        {
            "email": "Grace@Example.org",
            "username": "grace",
            "password1": "plum-orchard-lantern-7",
            "password2": "plum-orchard-lantern-7",
            "email_verified": "on",
            "auth_token-TOTAL_FORMS": "0",
            "auth_token-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert get_user_model().objects.get(username="grace").email_verified


def test_createsuperuser_makes_a_superuser_who_can_send_at_once(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "emailsystem.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "DJANGO_SUPERUSER_EMAIL": "Root@Example.org",
        "DJANGO_SUPERUSER_USERNAME": "root",
        "DJANGO_SUPERUSER_PASSWORD": "plum-orchard-lantern-7",
        "PATH": "/usr/bin:/bin",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, timeout=120)
    subprocess.run([*manage, "createsuperuser", "--noinput"], env=env, check=True, timeout=60)

    verified = subprocess.run(
        [*manage, "shell", "-c", "from emailsystem.users.models import User; print(User.objects.get().email_verified)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert verified.stdout.strip().splitlines()[-1] == "True"


def test_make_runs_demo_admin_can_send_at_once_even_if_it_was_unverified(settings, tmp_path):
    settings.DEBUG = True
    settings.BASE_DIR = tmp_path
    UserFactory(email="admin@example.com", username="admin", is_staff=True, is_superuser=True, unverified=True)

    call_command("demo_admin")

    assert get_user_model().objects.get(email="admin@example.com").email_verified
