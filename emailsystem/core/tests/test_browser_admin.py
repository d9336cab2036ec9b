"""An admin's journeys through Django admin, in Chromium, against the development server.

Each test logs in at /admin/ with the admin's own form and asserts on what the pages show:
creating a template, finding every email sent to a recipient, reading an email's timeline,
requeueing a failed recipient, and looking at an HTML body without running its scripts.

The server delivers in embedded mode through the fake SendGrid (a real HTTP server in this
process, emailsender/testing/fake_sendgrid.py) rather than to .eml files: the fake is switched
to answer 400 for one request to make a recipient fail the way SendGrid refuses one, and it
posts signed Event Webhook batches so the timeline shows SendGrid's events. Emails are sent
through the API with the admin's token. Screenshots of every step go to BROWSER_ARTIFACTS_DIR
(default: the test's tmp_path).
"""

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from emailsender.testing.fake_sendgrid import FakeSendGrid
from emailsystem.core.tests.browser import Walkthrough, api_call, api_token, artifacts_dir, chromium_walk

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "readme-admin-passphrase-1"  # the dev_server fixture's demo admin
# Embedded delivery usually settles in well under a second; this bounds each wait for it.
DELIVERY_WAIT_SECONDS = 15
ADMIN_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")


class AdminTab(Walkthrough):
    """A Walkthrough for the admin's journeys: its login form, and the API beside it with the admin's token."""

    _token: str | None = None

    def log_in(self) -> None:
        """Log in with the admin's own login form, from /admin/."""
        self.open("/admin/")
        self.page.wait_for_url(re.compile(r"/admin/login/"))
        self.page.locator("#id_username").fill(ADMIN_EMAIL)
        self.page.locator("#id_password").fill(ADMIN_PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(self.base_url + "/admin/")
        expect(self.page.get_by_role("heading", name="Site administration")).to_be_visible()

    def api(self, method: str, path: str, payload: dict | None = None) -> Any:
        """The REST API with the admin's token, as a client application would call it; fails on an error status."""
        if self._token is None:
            self._token = api_token(self.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
        status, body = api_call(self.base_url, method, path, payload, self._token)
        assert 200 <= status < 300, f"{method} {path}: {status} {body}"
        return body

    def send(self, **payload: Any) -> dict:
        """Send through the API and wait until every recipient has an outcome (so sends never overlap deliveries)."""
        accepted = self.api("POST", "emails/sent-email/", payload)
        self.wait_for_email(accepted["id"], lambda email: email["status"] != "queued")
        return accepted

    def wait_for_email(self, email_id: int, done: Any) -> dict:
        deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
        while True:
            email = self.api("GET", f"emails/sent-email/{email_id}/")
            if done(email):
                return email
            if time.monotonic() > deadline:
                pytest.fail(f"email {email_id} did not settle: {email}")
            time.sleep(0.2)

    def timeline(self) -> list[tuple[str, str, str, str]]:
        """The timeline's rows as shown: (time, step, recipients, detail)."""
        rows = self.page.locator("#timeline tbody tr")
        return [tuple(row.locator("td").nth(column).inner_text().strip() for column in range(4)) for row in rows.all()]


@pytest.fixture
def sendgrid_fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
def dev_server_env(sendgrid_fake) -> dict[str, str]:
    """Embedded delivery through the fake SendGrid, whose signed events the server's webhook accepts."""
    return {
        "SENDGRID_API_KEY": "SG.fake-key-for-the-fake-server",
        "SENDGRID_API_HOST": sendgrid_fake.url,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid_fake.events.public_key(),
    }


@pytest.fixture
def tab(request, dev_server, tmp_path) -> Iterator[AdminTab]:
    """Headless Chromium at 1280x900 (browser.chromium_walk), its screenshots named after the journey."""
    journey = request.node.name.removeprefix("test_")[:60]
    with chromium_walk(dev_server[0], artifacts_dir(tmp_path), kind=AdminTab, journey=journey) as admin_tab:
        yield admin_tab


def assert_fits_the_window(page: Any) -> None:
    """The change list's table is not cut off: its scrolling wrapper has nothing to scroll."""
    widths = page.evaluate(
        "(() => { const r = document.querySelector('#changelist-form .results');"
        " return [r.scrollWidth, r.clientWidth]; })()"
    )
    assert widths[0] <= widths[1], f"the table is {widths[0]}px wide in a {widths[1]}px space"


def test_an_admin_logs_in_and_creates_a_template(tab):
    page = tab.page
    tab.log_in()
    tab.screenshot("admin-index")

    page.get_by_role("link", name="Email templates").first.click()
    page.get_by_role("link", name="Add email template").click()
    page.locator("#id_name").fill("welcome")
    page.locator("#id_subject").fill("Hello {{ name }}")
    page.locator("#id_body").fill("Hi {{ name }}, welcome aboard.")
    page.locator("#id_html_body").fill("<p>Hi <b>{{ name }}</b>, welcome aboard.</p>")
    tab.screenshot("template-form-filled")
    page.get_by_role("button", name="Save", exact=True).click()

    page.wait_for_url(re.compile(r"/admin/emails/emailtemplate/$"))
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    row = page.locator("#result_list tbody tr").filter(has_text="welcome")
    expect(row.locator(".field-subject")).to_have_text("Hello {{ name }}")
    assert ADMIN_DATETIME.match(row.locator(".field-modified").inner_text().strip())
    assert_fits_the_window(page)
    tab.screenshot("template-listed")

    # The template is the API's too: the journey ends in a send that renders it.
    [template] = [item for item in tab.api("GET", "emails/email-template/")["results"] if item["name"] == "welcome"]
    sent = tab.send(recipients=["ada@example.com"], template=template["id"], context={"name": "Ada"})
    tab.open(f"/admin/emails/sentemail/{sent['id']}/change/")
    expect(page.locator(".field-subject .readonly")).to_have_text("Hello Ada")
    tab.screenshot("template-sent")
    tab.finished = True


def test_an_admin_finds_every_email_sent_to_a_recipient(tab):
    page = tab.page
    first = tab.send(recipients=["carol@example.com"], subject="Invoice 1001", body="Your invoice.")
    tab.send(recipients=["dave@example.net"], subject="Newsletter", body="News.")
    second = tab.send(
        recipients=["dave@example.net", "carol@example.com", "carol.smith@example.org"],
        subject="Reminder",
        body="A reminder.",
    )
    tab.log_in()

    page.get_by_role("link", name="Sent emails").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    assert_fits_the_window(page)
    tab.screenshot("sent-emails")

    page.locator("#searchbar").fill("carol@example.com")
    page.locator("#searchbar").press("Enter")
    page.wait_for_url(re.compile(r"\?q=carol%40example\.com"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    assert [row.locator(".field-subject").inner_text() for row in rows.all()] == ["Reminder", "Invoice 1001"]
    assert [row.locator("th.field-id").inner_text() for row in rows.all()] == [str(second["id"]), str(first["id"])]
    expect(page.locator("#changelist-search")).to_contain_text("2 results")
    tab.screenshot("search-whole-address")

    # Part of an address: both carols' emails, the one with two carols listed once.
    page.locator("#searchbar").fill("carol")
    page.locator("#searchbar").press("Enter")
    page.wait_for_url(re.compile(r"\?q=carol$"))
    expect(rows).to_have_count(2)
    tab.screenshot("search-part-of-an-address")

    # From the recipients' list, the same search is one click away.
    tab.open("/admin/emails/recipient/?q=carol.smith")
    page.locator("#result_list").get_by_role("link", name="Emails sent to it").click()
    page.wait_for_url(re.compile(r"/admin/emails/sentemail/\?q=carol\.smith%40example\.org"))
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".field-subject")).to_have_text("Reminder")
    tab.screenshot("search-from-the-recipient")

    # The deliveries' list finds that recipient's deliveries, newest first.
    tab.open("/admin/emails/delivery/?q=carol%40example.com")
    deliveries = page.locator("#result_list tbody tr")
    expect(deliveries).to_have_count(2)
    emails = [row.locator(".field-email_link").inner_text() for row in deliveries.all()]
    assert emails == [f"#{second['id']}", f"#{first['id']}"]
    assert_fits_the_window(page)
    tab.screenshot("deliveries-to-the-recipient")
    tab.finished = True


def test_an_admin_reads_an_emails_timeline(tab, sendgrid_fake, dev_server):
    base_url, _workdir = dev_server
    page = tab.page
    sent = tab.send(recipients=["erin@example.com", "frank@example.com"], subject="Timeline", body="Hello.")
    # SendGrid's Event Webhook reports on the recipients, stamped now (in whole seconds, as SendGrid does).
    events = sendgrid_fake.events.build(
        {"erin@example.com": ["delivered", "open"]}, default=["delivered"], email_ids=[sent["id"]]
    )
    now = int(time.time())
    for offset, event in enumerate(events):
        event["timestamp"] = now + offset
    body = json.dumps(events).encode()
    headers = {"Content-Type": "application/json", **sendgrid_fake.events.sign(body)}
    webhook = urllib.request.Request(  # noqa: S310 (the local development server)
        base_url + "/api/v1/webhooks/sendgrid/", data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(webhook, timeout=10) as answer:  # noqa: S310
        assert json.loads(answer.read())["applied"] == 3
    tab.log_in()

    page.get_by_role("link", name="Sent emails").click()
    page.locator("#result_list").get_by_role("link", name=str(sent["id"]), exact=True).click()
    page.wait_for_url(re.compile(rf"/admin/emails/sentemail/{sent['id']}/change/"))
    expect(page.get_by_role("heading", name="Timeline", exact=True)).to_be_visible()
    rows = tab.timeline()

    steps = [step for _time, step, _recipients, _detail in rows]
    assert steps[:3] == ["Accepted", "Taken by the in-process worker", "Attempt 1: sent"], steps
    assert sorted(steps[3:]) == ["SendGrid: delivered", "SendGrid: delivered", "SendGrid: open"], steps
    assert all(ADMIN_DATETIME.match(when) for when, *_ in rows), [when for when, *_ in rows]
    assert rows[0][3] == f"2 recipient(s), sent by {ADMIN_EMAIL}"
    assert rows[2][2:] == ("erin@example.com, frank@example.com", "HTTP 202")
    assert {(step, recipients) for _time, step, recipients, _detail in rows[3:]} == {
        ("SendGrid: delivered", "erin@example.com"),
        ("SendGrid: delivered", "frank@example.com"),
        ("SendGrid: open", "erin@example.com"),
    }
    expect(page.locator("#id_status, .field-status .readonly").first).to_have_text("Delivered")
    tab.screenshot("timeline")
    tab.finished = True


def test_an_admin_requeues_a_failed_recipient_from_the_emails_page(tab, sendgrid_fake):
    page = tab.page
    sendgrid_fake.set_mode(status=400, count=1)  # SendGrid refuses the next request, then accepts again
    sent = tab.send(recipients=["gina@example.com"], subject="Refused once", body="Hello.")
    assert tab.api("GET", f"emails/sent-email/{sent['id']}/")["status"] == "failed"
    tab.log_in()

    tab.open(f"/admin/emails/sentemail/{sent['id']}/change/")
    notice = page.locator("#requeue-failed")
    expect(notice).to_contain_text("1 recipient of this email failed.")
    failed_attempt = page.locator("#timeline tr.timeline-attempt")
    expect(failed_attempt.locator(".timeline-step")).to_have_text("Attempt 1: failed")
    expect(failed_attempt.locator(".timeline-detail")).to_contain_text("HTTP 400")
    expect(page.locator("#deliveries-group td.field-status")).to_have_text("Failed")
    tab.screenshot("failed")

    notice.get_by_role("button", name="Requeue the failed recipient").click()
    page.wait_for_url(re.compile(rf"/admin/emails/sentemail/{sent['id']}/change/$"))
    expect(page.locator(".messagelist")).to_contain_text("Requeued 1 failed recipient(s); they will be sent again.")
    expect(page.locator("#timeline tr.timeline-requeued .timeline-recipients")).to_have_text("gina@example.com")
    tab.screenshot("requeued")

    # Delivery goes on behind the page: reload until the recipient shows as sent. The recipients
    # are read before the timeline, and the attempt is recorded in the same transaction as the status.
    tab.reload_until(page.locator("#deliveries-group td.field-status"), "Sent", seconds=DELIVERY_WAIT_SECONDS)
    steps = [step for _time, step, _recipients, _detail in tab.timeline()]
    assert steps == [
        "Accepted",
        "Taken by the in-process worker",
        "Attempt 1: failed",
        "Requeued",
        "Taken by the in-process worker",
        "Attempt 1: sent",
    ], steps
    assert page.locator("#requeue-failed").count() == 0
    tab.screenshot("sent-after-requeue")
    tab.finished = True


def test_an_admin_views_an_html_body_without_running_its_scripts(tab):
    page = tab.page
    html_body = (
        '<h1 id="greeting">Hello from the body</h1>'
        "<script>document.title = 'pwned'; parent.document.title = 'pwned';</script>"
        '<img src="https://tracker.example/open.gif" onerror="parent.document.title = \'pwned by onerror\'">'
        '<p id="after">Still here.</p>'
    )
    sent = tab.send(recipients=["hal@example.com"], subject="Rich", body="Plain.", html_body=html_body)
    tab.log_in()

    # Chromium reports each script the sandbox stopped; goto returns after the page's load
    # event, which waits for the frame's, so its scripts and error handlers had their chance.
    with page.expect_console_message(lambda message: "Blocked script execution in 'about:srcdoc'" in message.text):
        response = tab.open(f"/admin/emails/sentemail/{sent['id']}/change/")
    assert response.headers["x-frame-options"] == "DENY"  # the page's own framing rule; srcdoc is not a load
    frame = page.frame_locator("#html-preview")
    expect(frame.locator("#greeting")).to_have_text("Hello from the body")
    expect(frame.locator("#after")).to_have_text("Still here.")
    assert page.title().startswith("#"), page.title()
    assert "pwned" not in page.title()
    iframe = page.locator("#html-preview")
    assert iframe.get_attribute("sandbox") == ""
    tab.screenshot("html-body", element="#html-body")

    page.locator("#html-source summary").click()
    expect(page.locator("#html-source pre")).to_contain_text("<script>document.title = 'pwned';")
    tab.screenshot("html-source", element="#html-body")
    tab.screenshot("email-page")
    tab.finished = True
