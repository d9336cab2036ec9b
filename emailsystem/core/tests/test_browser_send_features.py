"""The send's optional fields as a person uses them in the browsable API, in Chromium: tags and
metadata found again with the log's tag filter, a sandbox send, an attachment given as JSON, and a
scheduled send canceled from its page. Checked by what the pages show.

One development server (SQLite, embedded delivery to the outbox folder) serves the module; each
journey registers a person of its own. Screenshots go to BROWSER_ARTIFACTS_DIR (default: tmp_path).
"""

import base64
import datetime
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
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEND = "/api/v1/emails/sent-email/"
# Embedded delivery usually finishes in well under a second; this bounds the waits for its results.
DELIVERY_WAIT_SECONDS = 15


@pytest.fixture
def walk(module_dev_server, tmp_path) -> Iterator[Walkthrough]:
    base_url, _workdir = module_dev_server
    with chromium_walk(base_url, artifacts_dir(tmp_path)) as walkthrough:
        yield walkthrough


def open_from_the_log(walk: Walkthrough, email_id: int) -> dict:
    """Open the log and follow one email's `url` to its page; what the page shows."""
    walk.open(SEND)
    walk.expect_response("HTTP 200 OK")
    walk.page.locator(".response-info a", has_text=f"{walk.base_url}{SEND}{email_id}/").first.click()
    walk.page.wait_for_url(re.compile(rf"{SEND}{email_id}/$"))
    return walk.expect_response("HTTP 200 OK")


def written_to(workdir, address: str) -> list:
    """The emails the development server has written to `address`'s mailbox (the outbox folder) so far."""
    return [message for message in outbox_messages(workdir) if message["To"] == address]


def wait_for_mail(workdir, address: str):
    deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
    while not (written := written_to(workdir, address)):
        assert time.monotonic() < deadline, f"nothing reached {address} in the outbox folder"
        time.sleep(0.2)
    return written[-1]


def test_send_with_tags_and_metadata_then_find_it_with_the_log_tag_filter(module_dev_server, walk):
    base_url, _workdir = module_dev_server
    page = walk.page
    email, _ = new_person(module_dev_server)
    untagged = api_call(
        base_url,
        "POST",
        "emails/sent-email/",
        {"recipients": ["ops@example.com"], "subject": "Untagged", "body": "b"},
        token=api_token(base_url, email, PASSWORD),
    )[1]
    log_in_on_the_api_login_page(walk, email)

    # A tag with a "!" and metadata that is not JSON: each refusal under its box, with what was typed.
    walk.open(SEND)
    form = walk.post_form()
    assert form.locator("[name=tags]").input_value() == ""
    assert form.locator("[name=metadata]").input_value() == "{}"
    form.locator("[name=recipients]").fill("ops@example.com")
    form.locator("[name=subject]").fill("Quarterly report")
    form.locator("[name=body]").fill("Attached below.")
    form.locator("[name=tags]").fill("q4, report!")
    form.locator("[name=metadata]").fill("{order: A-1}")
    walk.submit(form)
    walk.expect_response("HTTP 400 Bad Request")
    form = walk.post_form()
    assert field_errors(form, "tags")[0] == "report!: A tag holds only letters, digits and _ . : - (no spaces)."
    assert field_errors(form, "metadata")[0] == 'Enter a JSON object such as {"order": "A-1"}.'
    assert form.locator("[name=tags]").input_value() == "q4, report!"
    assert form.locator("[name=metadata]").input_value() == "{order: A-1}"
    walk.screenshot("labels-refused")

    form.locator("[name=tags]").fill("q4 reports")
    form.locator("[name=metadata]").fill('{"order": "A-1"}')
    walk.submit(form)
    accepted = walk.expect_response("HTTP 202 Accepted")
    walk.screenshot("labels-accepted")

    # The log's Filters dialog finds it by one of its tags, and shows its labels; not the untagged one.
    walk.open(SEND)
    page.get_by_role("button", name="Filters").click()
    dialog = page.locator("#filtersModal")
    expect(dialog.locator("[name=tag]")).to_be_visible()
    dialog.locator("[name=tag]").fill("reports")
    with page.expect_navigation():
        dialog.locator("button[type=submit]", has_text="Submit").click()
    assert "tag=reports" in page.url
    log = walk.expect_response("HTTP 200 OK")
    assert [item["id"] for item in log["results"]] == [accepted["id"]]
    assert log["results"][0]["tags"] == ["q4", "reports"]
    assert log["results"][0]["metadata"] == {"order": "A-1"}
    walk.screenshot("log-by-tag")
    walk.open(f"{SEND}?tag=q4,nothing-else")
    assert [item["id"] for item in walk.expect_response("HTTP 200 OK")["results"]] == [accepted["id"]]
    walk.open(SEND)
    assert untagged["id"] in [item["id"] for item in walk.expect_response("HTTP 200 OK")["results"]]
    assert walk.broken == []
    walk.finished = True


def test_a_sandbox_send_ends_sandboxed_on_its_page_and_reaches_no_mailbox(module_dev_server, walk):
    _base_url, workdir = module_dev_server
    email, _ = new_person(module_dev_server)
    log_in_on_the_api_login_page(walk, email)

    walk.open(SEND)
    form = walk.post_form()
    form.locator("[name=recipients]").fill("trial@example.com")
    form.locator("[name=subject]").fill("Dry run")
    form.locator("[name=body]").fill("Checking the request only.")
    form.locator("[name=sandbox]").check()
    walk.submit(form)
    accepted = walk.expect_response("HTTP 202 Accepted")
    assert walk.post_form().locator("[name=sandbox]").is_checked()  # the form below holds what was sent

    detail = open_from_the_log(walk, accepted["id"])
    assert detail["sandbox"] is True
    walk.reload_until(walk.page.locator(".response-info pre"), '"status": "sandboxed"', seconds=DELIVERY_WAIT_SECONDS)
    detail = walk.response_json()
    assert detail["status"] == "sandboxed"
    assert [(r["email"], r["status"]) for r in detail["recipients"]] == [("trial@example.com", "sandboxed")]
    walk.screenshot("sandboxed")
    # Its outcome is recorded after the attempt, so the folder that stands for the mailboxes is final here.
    assert written_to(workdir, "trial@example.com") == []
    assert walk.broken == []
    walk.finished = True


def test_an_attachment_given_in_the_raw_data_form_shows_on_the_email_page_without_its_content(module_dev_server, walk):
    _base_url, workdir = module_dev_server
    page = walk.page
    email, _ = new_person(module_dev_server)
    log_in_on_the_api_login_page(walk, email)
    content = base64.b64encode(b"Minutes of the meeting.\n").decode()
    message = {"recipients": ["board@example.com"], "subject": "Minutes", "body": "See the attached file."}

    # The HTML form says where attachments go.
    walk.open(SEND)
    expect(walk.post_form().locator(".raw-data-only")).to_contain_text("JSON only: give it in the Raw data tab.")

    # An executable is refused, named in the answer; the box keeps the JSON to correct.
    refused = {**message, "attachments": [{"filename": "minutes.exe", "content": content}]}
    raw = walk.raw_form()
    raw.locator("[name=_content]").fill(json.dumps(refused))
    walk.submit(raw)
    answer = walk.expect_response("HTTP 400 Bad Request")
    assert answer["attachments"] == {"0": {"filename": ["'minutes.exe': executable files (.exe) are refused."]}}
    expect(page.locator(".response-info")).to_contain_text("executable files (.exe) are refused")
    assert json.loads(walk.raw_form().locator("[name=_content]").input_value()) == refused
    walk.screenshot("attachment-refused")

    sent = {**message, "attachments": [{"filename": "minutes.txt", "content": content}]}
    walk.raw_form().locator("[name=_content]").fill(json.dumps(sent))
    walk.submit(walk.raw_form())
    accepted = walk.expect_response("HTTP 202 Accepted")

    detail = open_from_the_log(walk, accepted["id"])
    assert detail["attachments"] == [
        {"filename": "minutes.txt", "type": "text/plain", "size": 24, "disposition": "attachment", "content_id": ""}
    ]
    assert content not in page.content()
    walk.screenshot("attachment-on-the-email-page")
    delivered = wait_for_mail(workdir, "board@example.com")
    [attached] = list(delivered.iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("minutes.txt", "Minutes of the meeting.\n")
    assert walk.broken == []
    walk.finished = True


def test_a_scheduled_send_is_canceled_from_its_page_and_never_delivered(module_dev_server, walk):
    base_url, workdir = module_dev_server
    page = walk.page
    email, _ = new_person(module_dev_server)
    log_in_on_the_api_login_page(walk, email)
    in_an_hour = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(hours=1)

    # A time without an offset is refused under send_at; with one, the send is scheduled.
    walk.open(SEND)
    form = walk.post_form()
    form.locator("[name=recipients]").fill("later@example.com")
    form.locator("[name=subject]").fill("Reminder")
    form.locator("[name=body]").fill("The meeting is tomorrow.")
    form.locator("[name=send_at]").fill(in_an_hour.replace(tzinfo=None).isoformat())
    walk.submit(form)
    walk.expect_response("HTTP 400 Bad Request")
    form = walk.post_form()
    assert field_errors(form, "send_at")[0] == "Give the time with an offset (2026-11-22T09:30:00Z or +01:00)."
    form.locator("[name=send_at]").fill(in_an_hour.isoformat())
    walk.submit(form)
    accepted = walk.expect_response("HTTP 202 Accepted")
    assert accepted["status"] == "scheduled"

    detail = open_from_the_log(walk, accepted["id"])
    assert (detail["status"], detail["recipients"][0]["status"]) == ("scheduled", "queued")
    walk.screenshot("scheduled")

    # Its page offers Cancel among its Extra Actions: a page with the button alone.
    walk.extra_action("Cancel")
    expect(page.locator(".page-header h1")).to_have_text("Cancel")
    form = walk.post_form()
    assert form.locator("input:not([type=hidden]), textarea, select").count() == 0
    walk.screenshot("cancel-page")
    walk.submit(form)
    canceled = walk.expect_response("HTTP 200 OK")
    assert (canceled["id"], canceled["status"]) == (accepted["id"], "canceled")
    assert [r["status"] for r in canceled["recipients"]] == ["canceled"]
    walk.screenshot("canceled")
    # Canceling again answers the same (docs/sending/scheduled.md).
    walk.submit(walk.post_form())
    assert walk.expect_response("HTTP 200 OK")["status"] == "canceled"

    # An email already handed on cannot be canceled: the 409 says why.
    now = api_call(
        base_url,
        "POST",
        "emails/sent-email/",
        {"recipients": ["now@example.com"], "subject": "Now", "body": "b"},
        token=api_token(base_url, email, PASSWORD),
    )[1]
    wait_for_mail(workdir, "now@example.com")
    open_from_the_log(walk, now["id"])
    walk.reload_until(page.locator(".response-info pre"), '"status": "sent"', seconds=DELIVERY_WAIT_SECONDS)
    walk.extra_action("Cancel")
    walk.submit(walk.post_form())
    assert walk.expect_response("HTTP 409 Conflict") == {
        "detail": "Only a scheduled email can be canceled; this one is sent.",
        "code": "not_scheduled",
    }
    walk.screenshot("cancel-refused")

    # The later email went out after the cancel; the canceled one is in no mailbox and stays canceled.
    assert written_to(workdir, "later@example.com") == []
    assert open_from_the_log(walk, accepted["id"])["status"] == "canceled"
    assert walk.broken == []
    walk.finished = True
