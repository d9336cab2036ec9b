"""Guessing passwords on the login forms, in Chromium, against `make run`'s server.

The admin's form and the browsable API's (/api-auth/login/) once took any number of wrong
passwords and then logged in. Now the person sees a page saying there were too many attempts
(429), the right password is not checked meanwhile, and after the cool-off it logs in.
Defaults unless a test says otherwise: THROTTLE_AUTH 20/min per IP, THROTTLE_LOGIN_ACCOUNT
10/15min per account.
"""

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from emailsystem.core.tests.browser import Walkthrough

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "readme-admin-passphrase-1"  # the dev_server fixture's demo admin
THROTTLED = "Too many log-in attempts"
# Enough for the cool-off of the test that waits for it (30 s) and its page loads.
COOL_OFF_DEADLINE_SECONDS = 90


def submit(walk: Walkthrough, path: str, name: str, password: str) -> Any:
    """Fill in and send the login form at `path`; the answer to the POST."""
    walk.open(path)
    page = walk.page
    page.locator("#id_username").fill(name)
    page.locator("#id_password").fill(password)
    with page.expect_response(lambda answer: answer.request.method == "POST") as posted:
        page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return posted.value


def shows_the_throttled_page(walk: Walkthrough) -> None:
    expect(walk.page.get_by_role("heading", name=THROTTLED)).to_be_visible()
    expect(walk.page.locator("#throttled-message")).to_contain_text(re.compile(r"Try again in \d+ (second|minute)"))


def test_the_admin_form_stops_guessing_one_account_and_refuses_even_the_right_password(walk):
    """The reproduction: 22 wrong passwords on /admin/login/, then the right one."""
    answers = [submit(walk, "/admin/login/", ADMIN_EMAIL, f"wrong-{n}") for n in range(22)]

    assert [answer.status for answer in answers] == [200] * 10 + [429] * 12
    answer = submit(walk, "/admin/login/", ADMIN_EMAIL, "wrong-again")
    assert answer.status == 429
    shows_the_throttled_page(walk)
    assert 0 < int(answer.headers["retry-after"]) <= 15 * 60
    walk.screenshot("admin-login-throttled")

    right = submit(walk, "/admin/login/", ADMIN_EMAIL, ADMIN_PASSWORD)
    assert right.status == 429
    shows_the_throttled_page(walk)
    # The lock is the account's, on every form: the browsable API's login refuses it too.
    assert submit(walk, "/api-auth/login/", ADMIN_EMAIL, ADMIN_PASSWORD).status == 429
    walk.open("/admin/")
    walk.page.wait_for_url(re.compile(r"/admin/login/\?next=/admin/"))
    walk.finished = True


def test_the_browsable_api_form_stops_guessing_from_one_address(walk):
    """The reproduction: 25 wrong passwords on /api-auth/login/ (here against as many invented
    accounts, so that only the address's limit applies), then the admin's right password."""
    answers = [submit(walk, "/api-auth/login/", f"guess{n}@example.com", "wrong") for n in range(25)]

    assert [answer.status for answer in answers] == [200] * 20 + [429] * 5
    shows_the_throttled_page(walk)
    walk.screenshot("api-auth-login-throttled")
    right = submit(walk, "/admin/login/", ADMIN_EMAIL, ADMIN_PASSWORD)
    assert right.status == 429, "the address's limit holds on every form"
    shows_the_throttled_page(walk)
    walk.finished = True


@pytest.mark.parametrize("dev_server_env", [{"THROTTLE_LOGIN_ACCOUNT": "3/30s"}])
def test_after_the_cool_off_the_owner_logs_in(walk):
    wrong = [submit(walk, "/api-auth/login/", ADMIN_EMAIL, f"wrong-{n}").status for n in range(3)]
    locked = submit(walk, "/api-auth/login/?next=/api/v1/", ADMIN_EMAIL, ADMIN_PASSWORD)
    assert wrong == [200] * 3
    assert locked.status == 429
    shows_the_throttled_page(walk)
    walk.screenshot("locked")

    # Wait out the Retry-After the page was sent with, then try again; each refusal names the next wait.
    deadline = time.monotonic() + COOL_OFF_DEADLINE_SECONDS
    answer = locked
    while answer.status == 429 and time.monotonic() < deadline:
        time.sleep(int(answer.headers["retry-after"]))
        answer = submit(walk, "/api-auth/login/?next=/api/v1/", ADMIN_EMAIL, ADMIN_PASSWORD)

    walk.page.wait_for_url(walk.base_url + "/api/v1/")
    expect(walk.page.locator(".navbar")).to_contain_text("admin")
    walk.screenshot("logged-in-after-the-cool-off")
    walk.finished = True
