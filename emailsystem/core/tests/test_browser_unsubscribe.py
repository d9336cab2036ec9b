"""One-click unsubscribe as a recipient meets it, in Chromium: the link in the email's
List-Unsubscribe header opens a page with a button; pressing it unsubscribes, and the sender's
next email to that address is `suppressed`.

The development server (SQLite, embedded delivery to the outbox folder) is the one `make run`
starts, on a free port; PUBLIC_BASE_URL names its host, so the test opens each link's path on
the server. Screenshots of every step go to BROWSER_ARTIFACTS_DIR (default: tmp_path).
"""

import time
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from emailsystem.core.tests.browser import (
    OUTBOX_WAIT_SECONDS,
    admin_token,
    api_call,
    outbox_dir,
    outbox_messages,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

READER = "reader@example.org"


@pytest.fixture
def dev_server_env() -> dict[str, str]:
    return {"PUBLIC_BASE_URL": "http://localhost"}


def newest_email_to(workdir: Path, address: str) -> EmailMessage:
    deadline = time.monotonic() + OUTBOX_WAIT_SECONDS
    while True:
        found = [message for message in outbox_messages(workdir) if message["To"] == address]
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no email to {address} in {outbox_dir(workdir)}")
        time.sleep(0.2)


def test_a_recipient_unsubscribes_with_the_button_and_the_next_send_skips_them(dev_server, walk):
    base_url, workdir = dev_server
    token = admin_token(dev_server)
    newsletter = {"recipients": [READER], "subject": "November news", "body": "Hello", "unsubscribe": True}
    status, body = api_call(base_url, "POST", "emails/sent-email/", newsletter, token)
    assert status == 202, body

    mailed = newest_email_to(workdir, READER)
    assert mailed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mailed["List-Unsubscribe"].strip("<>")
    assert link.startswith("http://localhost/u/")

    # Opening the link shows the question and the button, and unsubscribes no one yet.
    page = walk.page
    walk.open(urlsplit(link).path)
    expect(page.get_by_role("heading")).to_have_text("Unsubscribe from these emails?")
    button = page.get_by_role("button", name="Unsubscribe")
    expect(button).to_be_visible()
    walk.screenshot("unsubscribe-page")
    assert api_call(base_url, "GET", "emails/suppressions/", token=token)[1]["count"] == 0

    button.click()
    expect(page.get_by_role("heading")).to_have_text("You are unsubscribed")
    expect(page.locator("main")).to_contain_text("will no longer be sent to you")
    walk.screenshot("unsubscribed")

    [entry] = api_call(base_url, "GET", "emails/suppressions/", token=token)[1]["results"]
    assert (entry["email"], entry["reason"], entry["email_id"]) == (READER, "unsubscribe", body["id"])
    again = {"recipients": [READER, "colleague@example.org"], "subject": "December news", "body": "Hello"}
    status, answer = api_call(base_url, "POST", "emails/sent-email/", again, token)
    assert status == 202 and [r["status"] for r in answer["recipients"]] == ["suppressed", "queued"]
    assert walk.broken == []
    walk.finished = True
