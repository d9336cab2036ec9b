"""A person's journeys through the browsable API, in Chromium, checked by what the pages show.

One development server (SQLite, embedded delivery) serves the module; each journey registers
people of its own. Screenshots of every step go to BROWSER_ARTIFACTS_DIR (default: tmp_path).
"""

import json
import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from emailsystem.core.tests.browser import (
    PASSWORD,
    Walkthrough,
    api_call,
    api_token,
    artifacts_dir,
    chromium_walk,
    field_errors,
    log_in_on_the_api_login_page,
    new_person,
    outbox_messages,
    template_as_admin,
    verification_link,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Embedded delivery usually finishes in well under a second; this bounds the wait for "sent".
DELIVERY_WAIT_SECONDS = 15


@pytest.fixture
def walk(module_dev_server, tmp_path) -> Iterator[Walkthrough]:
    base_url, _workdir = module_dev_server
    with chromium_walk(base_url, artifacts_dir(tmp_path)) as walkthrough:
        yield walkthrough


def test_register_log_in_on_the_api_page_and_log_out(module_dev_server, walk):
    page = walk.page

    # The register page: its form and description, with no 405 block above them.
    walk.open("/api/v1/users/register/")
    expect(page.locator(".page-header h1")).to_have_text("Register")
    assert page.locator(".response-info").is_hidden()
    assert page.locator(".request-info").is_hidden()
    assert page.get_by_text("405").count() == 0 or not page.get_by_text("405").first.is_visible()
    assert page.locator(".navbar-brand").inner_text().strip() == "emailsystem"
    assert "Django REST framework" not in page.content()
    assert page.title().startswith("Register") and page.title().endswith("emailsystem")
    walk.screenshot("register-page")

    # A refused registration: the error under the password, and the password never in the page.
    secret = "pw"
    form = walk.post_form()
    form.locator("[name=email]").fill("grace@example.com")
    form.locator("[name=username]").fill("grace")
    form.locator("[name=password]").fill(secret)
    form.get_by_role("button", name="POST").click()
    walk.expect_response("HTTP 400 Bad Request")
    form = walk.post_form()
    assert any("too short" in message for message in field_errors(form, "password")), field_errors(form, "password")
    assert form.locator("[name=email]").input_value() == "grace@example.com"
    assert form.locator("[name=password]").input_value() == ""
    assert f'value="{secret}"' not in page.content()
    walk.screenshot("register-refused")

    form.locator("[name=password]").fill(PASSWORD)
    form.get_by_role("button", name="POST").click()
    registered = walk.expect_response("HTTP 201 Created")
    assert registered["email"] == "grace@example.com" and registered["username"] == "grace"
    assert registered["message"].startswith("We mailed a link to grace@example.com")
    walk.screenshot("registered")

    # The login page describes itself with the literal placeholders, then logs the browser in.
    walk.open("/api/v1/users/login/")
    description = page.locator(".content-main .pull-left").inner_text()
    assert '{"username": "<your email>", "password": "..."}' in description
    assert "Authorization: Token <token>" in description
    assert page.locator(".response-info").is_hidden()
    assert page.locator(".navbar").get_by_role("link", name="Log in").is_visible()
    form = walk.post_form()
    assert form.locator("[name=email]").is_hidden()  # the alias clients may use; people see username
    form.locator("[name=username]").fill("grace@example.com")
    form.locator("[name=password]").fill(PASSWORD)
    walk.screenshot("login-page")
    form.get_by_role("button", name="POST").click()
    answer = walk.expect_response("HTTP 200 OK")
    assert answer["email"] == "grace@example.com" and len(answer["token"]) == 40
    expect(page.locator(".navbar")).to_contain_text("grace@example.com")
    assert page.locator(".navbar").get_by_role("link", name="Log in").count() == 0
    walk.screenshot("logged-in")

    # The session works on the other pages: the root greets a logged-in person.
    walk.open("/api/v1/")
    expect(page.locator(".navbar")).to_contain_text("grace@example.com")
    root_description = page.locator(".content-main .pull-left").inner_text()
    assert "Send email at sent-email" in root_description
    assert "log in" not in root_description.lower()

    # Log out with the logout page's button: no media-type box, and afterwards nobody is logged in.
    walk.open("/api/v1/users/logout/")
    assert page.locator(".response-info").is_hidden()
    form = walk.post_form()
    assert form.locator("[name=_content_type]").count() == 0
    assert page.locator("[name=_content_type]").is_hidden()
    walk.screenshot("logout-page")
    form.get_by_role("button", name="POST").click()
    assert walk.expect_response("HTTP 200 OK") == {}
    expect(page.locator(".navbar").get_by_role("link", name="Log in")).to_be_visible()
    assert "grace@example.com" not in walk.navbar()
    walk.screenshot("logged-out")

    walk.open("/api/v1/")
    assert "Register, then log in" in page.locator(".content-main .pull-left").inner_text()
    # The token was revoked with the logout.
    status, _ = api_call(walk.base_url, "GET", "emails/sent-email/", token=answer["token"])
    assert status == 401
    assert walk.broken == []
    walk.finished = True


def test_send_with_the_form_correcting_a_bad_address_and_a_missing_variable(module_dev_server, walk):
    page = walk.page
    template_as_admin(
        module_dev_server,
        name="order-shipped",
        subject="Order {{ order }} shipped",
        body="Hi {{ name }}, it is on its way.",
    )
    email, _ = new_person(module_dev_server)
    log_in_on_the_api_login_page(walk, email)

    walk.open("/api/v1/emails/sent-email/")
    form = walk.post_form()
    assert form.locator("[name=context]").input_value() == "{}"
    assert form.locator("[name=recipients]").input_value() == ""
    form.locator("[name=recipients]").fill("ann@example.com\nbob@@example.com\ncy@example.com")
    form.locator("select[name=template]").select_option(label="order-shipped")
    form.locator("[name=context]").fill(json.dumps({"order": "A-1"}))
    form.get_by_role("button", name="POST").click()

    # The bad address is named under the field, and the box keeps the addresses one per line.
    walk.expect_response("HTTP 400 Bad Request")
    form = walk.post_form()
    assert field_errors(form, "recipients")[0] == "bob@@example.com: Enter a valid email address."
    assert form.locator("[name=recipients]").input_value() == "ann@example.com\nbob@@example.com\ncy@example.com"
    assert json.loads(form.locator("[name=context]").input_value()) == {"order": "A-1"}
    walk.screenshot("send-refused-address")

    # Corrected, the send is refused again: the template prints {{ name }}, which the context lacks.
    form.locator("[name=recipients]").fill("ann@example.com\nbob@example.com\ncy@example.com")
    form.get_by_role("button", name="POST").click()
    refused = walk.expect_response("HTTP 400 Bad Request")
    assert refused["context"] == ["The template uses variables the context does not give: name."]
    form = walk.post_form()
    assert field_errors(form, "context")[0] == "The template uses variables the context does not give: name."
    assert form.locator("[name=recipients]").input_value() == "ann@example.com\nbob@example.com\ncy@example.com"
    assert form.locator("select[name=template] option:checked").inner_text() == "order-shipped"
    walk.screenshot("send-refused-missing-variable")

    form.locator("[name=context]").fill(json.dumps({"order": "A-1", "name": "Ann"}))
    form.get_by_role("button", name="POST").click()
    accepted = walk.expect_response("HTTP 202 Accepted")
    assert [r["email"] for r in accepted["recipients"]] == ["ann@example.com", "bob@example.com", "cy@example.com"]
    expect(page.get_by_text("Email sent. It might take a while to deliver.")).to_be_visible()
    walk.screenshot("send-accepted")

    # Nothing was recorded for the refused attempts: the log holds the one accepted send.
    walk.open("/api/v1/emails/sent-email/")
    log = walk.expect_response("HTTP 200 OK")
    assert log["count"] == 1 and log["results"][0]["id"] == accepted["id"]
    assert log["results"][0]["subject"] == "Order A-1 shipped"
    assert walk.broken == []
    walk.finished = True


def send_as(base_url: str, token: str, recipients: list[str], subject: str) -> dict:
    status, body = api_call(
        base_url, "POST", "emails/sent-email/", {"recipients": recipients, "subject": subject, "body": "b"}, token=token
    )
    assert status == 202, body
    return body


def wait_until_sent(walk: Walkthrough, base_url: str, token: str, count: int) -> None:
    deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
    while True:
        _status, log = api_call(base_url, "GET", "emails/sent-email/?status=sent", token=token)
        if log["count"] == count or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert log["count"] == count, log


def open_filters(walk: Walkthrough):
    page = walk.page
    page.get_by_role("button", name="Filters").click()
    # Wait out Bootstrap's fade-in, so the screenshot shows the dialog rather than half of it.
    page.wait_for_function("getComputedStyle(document.querySelector('#filtersModal')).opacity === '1'")
    return page.locator("#filtersModal")


def submit_filters(walk: Walkthrough, dialog) -> None:
    # By CSS, not by role: the dialog keeps DRF's aria-hidden="true" while it is open.
    with walk.page.expect_navigation():
        dialog.locator("button[type=submit]", has_text="Submit").click()


def logged_subjects(log: dict) -> list[str]:
    return [email["subject"] for email in log["results"]]


def test_filter_the_log_with_the_filters_dialog_and_open_an_email(module_dev_server, walk):
    base_url, _workdir = module_dev_server
    page = walk.page
    email, _ = new_person(module_dev_server)
    token = api_token(base_url, email, PASSWORD)
    send_as(base_url, token, ["kim@example.com"], "first")
    send_as(base_url, token, ["lee@example.com", "kim@example.com"], "second")
    third = send_as(base_url, token, ["max@example.com"], "third")
    wait_until_sent(walk, base_url, token, 3)
    log_in_on_the_api_login_page(walk, email)

    # By recipient: the box starts empty (not "[]") and finds the two emails sent to kim.
    walk.open("/api/v1/emails/sent-email/")
    dialog = open_filters(walk)
    assert dialog.locator("[name=recipient]").input_value() == ""
    dialog.locator("[name=recipient]").fill("kim@example.com")
    walk.screenshot("filters-recipient")
    submit_filters(walk, dialog)
    log = walk.expect_response("HTTP 200 OK")
    assert logged_subjects(log) == ["second", "first"]
    walk.screenshot("filtered-by-recipient")

    # The dialog shows the filter as typed, so the next one starts from it: add a second address.
    dialog = open_filters(walk)
    assert dialog.locator("[name=recipient]").input_value() == "kim@example.com"
    dialog.locator("[name=recipient]").fill("kim@example.com, max@example.com")
    submit_filters(walk, dialog)
    assert logged_subjects(walk.expect_response("HTTP 200 OK")) == ["third", "second", "first"]

    # By status: all three were sent; none failed.
    dialog = open_filters(walk)
    dialog.locator("[name=recipient]").fill("")
    dialog.locator("select[name=status]").select_option("failed")
    submit_filters(walk, dialog)
    assert walk.expect_response("HTTP 200 OK")["count"] == 0
    dialog = open_filters(walk)
    dialog.locator("select[name=status]").select_option("sent")
    submit_filters(walk, dialog)
    assert walk.expect_response("HTTP 200 OK")["count"] == 3

    # By time, with a mistake first: the 400 keeps the Filters button, and the dialog shows the error.
    dialog = open_filters(walk)
    dialog.locator("[name=start_time]").fill("yesterday")
    submit_filters(walk, dialog)
    refused = walk.expect_response("HTTP 400 Bad Request")
    assert "start_time" in refused
    expect(page.get_by_role("button", name="Filters")).to_be_visible()
    dialog = open_filters(walk)
    expect(dialog.get_by_text("Enter an ISO 8601 date (2026-11-22) or datetime")).to_be_visible()
    assert dialog.locator("[name=start_time]").input_value() == "yesterday"
    walk.screenshot("filters-refused-time")
    dialog.locator("[name=start_time]").fill("2000-01-01")
    dialog.locator("[name=end_time]").fill("2000-12-31")
    submit_filters(walk, dialog)
    assert walk.expect_response("HTTP 200 OK")["count"] == 0
    dialog = open_filters(walk)
    dialog.locator("[name=end_time]").fill("2999-12-31")
    submit_filters(walk, dialog)
    log = walk.expect_response("HTTP 200 OK")
    assert log["count"] == 3
    walk.screenshot("filtered-by-time")

    # Open one email from the log by its link; its page lists each recipient's status.
    detail_url = next(item["url"] for item in log["results"] if item["id"] == third["id"])
    page.locator(".response-info a", has_text=detail_url).click()
    page.wait_for_url(re.compile(rf"/api/v1/emails/sent-email/{third['id']}/$"))
    detail = walk.expect_response("HTTP 200 OK")
    assert detail["subject"] == "third"
    assert [(r["email"], r["status"]) for r in detail["recipients"]] == [("max@example.com", "sent")]
    expect(page.locator(".page-header h1")).to_have_text("Sent Email Instance")
    walk.screenshot("email-opened-from-log")
    assert walk.broken == []
    walk.finished = True


def test_register_follow_the_mailed_link_in_the_browser_and_send_from_your_own_address(module_dev_server, walk):
    """The verified-sender journey: an unverified address cannot send as itself; the link mailed to it
    (found in the outbox folder, where make run writes every email) verifies it; then mail goes From it."""
    base_url, workdir = module_dev_server
    page = walk.page
    email, _ = new_person(module_dev_server, verify=False)
    log_in_on_the_api_login_page(walk, email)

    # The root tells an unverified person what to do.
    walk.open("/api/v1/")
    expect(page.locator(".content-main .pull-left")).to_contain_text(f"Your address {email} is not verified yet")

    # A send before verifying is refused (make run sets no EMAIL_FROM_ADDRESS), saying what to do.
    walk.open("/api/v1/emails/sent-email/")
    form = walk.post_form()
    form.locator("[name=recipients]").fill("finance@example.org")
    form.locator("[name=subject]").fill("Urgent wire transfer")
    form.locator("[name=body]").fill("Please wire the money today.")
    form.get_by_role("button", name="POST").click()
    refused = walk.expect_response("HTTP 403 Forbidden")
    assert refused["code"] == "sender_not_verified"
    assert f"Follow the link we mailed to {email}" in refused["detail"]
    walk.screenshot("send-refused-unverified")

    # The link, from the email in the outbox folder, opened in the browser.
    link = verification_link(workdir, email)
    assert link.startswith(base_url + "/api/v1/users/verify-email/?token=")
    page.goto(link)
    verified = walk.expect_response("HTTP 200 OK")
    assert verified == {
        "message": f"{email} is verified: the emails you send now use it.",
        "email": email,
        "email_verified": True,
    }
    expect(page.get_by_text(f"{email} is verified")).to_be_visible()
    walk.screenshot("link-followed")
    walk.open("/api/v1/users/me/")
    assert walk.expect_response("HTTP 200 OK")["email_verified"] is True

    # Now the send goes out From the person's own address.
    walk.open("/api/v1/emails/sent-email/")
    form = walk.post_form()
    form.locator("[name=recipients]").fill("colleague@example.org")
    form.locator("[name=subject]").fill("Lunch?")
    form.locator("[name=body]").fill("Noon at the usual place.")
    form.get_by_role("button", name="POST").click()
    walk.expect_response("HTTP 202 Accepted")
    walk.screenshot("send-accepted-verified")
    deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
    while not (written := [m for m in outbox_messages(workdir) if m["To"] == "colleague@example.org"]):
        assert time.monotonic() < deadline, "the email never reached the outbox folder"
        time.sleep(0.2)
    [delivered] = written
    assert (delivered["From"], delivered["Reply-To"], delivered["Subject"]) == (email, None, "Lunch?")
    assert not [m for m in outbox_messages(workdir) if m["To"] == "finance@example.org"], "the refused send went out"
    assert walk.broken == []
    walk.finished = True
