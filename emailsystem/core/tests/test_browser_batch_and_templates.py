"""Batch sends and the template tools as a person uses them in the browsable API, in Chromium: a
batch in the Raw data form (a typo, a refused message, then accepted), a template previewed from
its page, and a template's text checked by an admin. Checked by what the pages show.

One development server (SQLite, embedded delivery) serves the module; each journey registers a
person of its own. Screenshots go to BROWSER_ARTIFACTS_DIR (default: tmp_path).
"""

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from emailsystem.core.tests.browser import (
    ADMIN_EMAIL,
    Walkthrough,
    admin_password,
    artifacts_dir,
    chromium_walk,
    field_errors,
    log_in_on_the_api_login_page,
    new_person,
    template_as_admin,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BATCH = "/api/v1/emails/batch/"


@pytest.fixture
def walk(module_dev_server, tmp_path) -> Iterator[Walkthrough]:
    base_url, _workdir = module_dev_server
    with chromium_walk(base_url, artifacts_dir(tmp_path)) as walkthrough:
        yield walkthrough


def the_log(walk: Walkthrough) -> dict:
    walk.open("/api/v1/emails/sent-email/")
    return walk.expect_response("HTTP 200 OK")


def test_a_batch_in_the_raw_data_form_refused_by_index_then_accepted(module_dev_server, walk):
    page = walk.page
    email, _ = new_person(module_dev_server)
    log_in_on_the_api_login_page(walk, email)
    batch = {
        "messages": [
            {"recipients": ["ann@example.com"], "subject": "Your invoice", "body": "Attached."},
            {"recipients": ["bob@@example.com"], "subject": "Your invoice", "body": "Attached."},
        ]
    }

    # The page offers the Raw data form alone: a list of messages is JSON.
    walk.open(BATCH)
    assert page.locator("a[name=html-tab]").count() == 0
    raw = walk.raw_form()
    assert json.loads(raw.locator("[name=_content]").input_value()) == {"messages": []}

    # A typo in the JSON: the parse error, the person still logged in, and the text kept to correct.
    typo = json.dumps(batch).replace('"subject"', '"subject":', 1)
    raw.locator("[name=_content]").fill(typo)
    walk.submit(raw)
    assert walk.expect_response("HTTP 400 Bad Request")["detail"].startswith("JSON parse error")
    expect(page.locator(".navbar")).to_contain_text(email)
    assert walk.raw_form().locator("[name=_content]").input_value() == typo
    walk.screenshot("batch-typo")

    # One message refused: the answer names it by its index, the box keeps the batch, nothing is written.
    walk.raw_form().locator("[name=_content]").fill(json.dumps(batch))
    walk.submit(walk.raw_form())
    refused = walk.expect_response("HTTP 400 Bad Request")
    assert refused == {"messages": {"1": {"recipients": {"0": ["Enter a valid email address."]}}}}
    expect(page.locator(".response-info")).to_contain_text("Enter a valid email address.")
    assert json.loads(walk.raw_form().locator("[name=_content]").input_value()) == batch
    walk.screenshot("batch-refused")
    assert the_log(walk)["count"] == 0

    walk.open(BATCH)
    batch["messages"][1]["recipients"] = ["bob@example.com"]
    walk.raw_form().locator("[name=_content]").fill(json.dumps(batch))
    walk.submit(walk.raw_form())
    accepted = walk.expect_response("HTTP 202 Accepted")
    assert [[r["email"] for r in result["recipients"]] for result in accepted["results"]] == [
        ["ann@example.com"],
        ["bob@example.com"],
    ]
    assert {result["message"] for result in accepted["results"]} == {"Email sent. It might take a while to deliver."}
    walk.screenshot("batch-accepted")
    log = the_log(walk)
    assert sorted(item["id"] for item in log["results"]) == sorted(result["id"] for result in accepted["results"])
    assert walk.broken == []
    walk.finished = True


def test_preview_a_template_from_its_page_with_a_missing_variable_then_all_of_them(module_dev_server, walk):
    page = walk.page
    template = template_as_admin(
        module_dev_server,
        name="shipped",
        subject="Order {{ order.id }} shipped",
        body="Hi {{ name }}, it is on its way.",
    )
    email, _ = new_person(module_dev_server)
    log_in_on_the_api_login_page(walk, email)

    # The template's page offers Preview among its Extra Actions.
    walk.open(f"/api/v1/emails/email-template/{template['id']}/")
    assert walk.expect_response("HTTP 200 OK")["name"] == "shipped"
    walk.extra_action("Preview")
    expect(page.locator(".page-header h1")).to_have_text("Preview")

    form = walk.post_form()
    form.locator("[name=context]").fill(json.dumps({"name": "Ada"}))
    walk.submit(form)
    refused = walk.expect_response("HTTP 400 Bad Request")
    assert refused["context"] == ["The template uses variables the context does not give: order.id."]
    form = walk.post_form()
    assert field_errors(form, "context")[0] == "The template uses variables the context does not give: order.id."
    assert json.loads(form.locator("[name=context]").input_value()) == {"name": "Ada"}
    walk.screenshot("preview-refused")

    form.locator("[name=context]").fill(json.dumps({"name": "Ada", "order": {"id": "A-7"}}))
    walk.submit(form)
    shown = walk.expect_response("HTTP 200 OK")
    assert shown == {"subject": "Order A-7 shipped", "body": "Hi Ada, it is on its way.", "html_body": ""}
    # The form below is the preview's own, holding the context, ready for another try.
    form = walk.post_form()
    assert json.loads(form.locator("[name=context]").input_value()) == {"name": "Ada", "order": {"id": "A-7"}}
    assert form.locator("[name=subject]").count() == 0
    walk.screenshot("preview-shown")
    assert the_log(walk)["count"] == 0  # a preview sends nothing
    assert walk.broken == []
    walk.finished = True


def test_an_admin_checks_a_template_text_its_variables_then_a_syntax_error(module_dev_server, walk):
    _base_url, workdir = module_dev_server
    page = walk.page
    log_in_on_the_api_login_page(walk, ADMIN_EMAIL, admin_password(workdir))

    walk.open("/api/v1/emails/email-template/")
    walk.expect_response("HTTP 200 OK")
    walk.extra_action("Validate")
    expect(page.locator(".page-header h1")).to_have_text("Validate")

    form = walk.post_form()
    form.locator("[name=subject]").fill("Order {{ order.id }}")
    form.locator("[name=body]").fill("{% for item in items %}{{ item.name }}{% endfor %}{% if vip %}Thanks!{% endif %}")
    walk.submit(form)
    checked = walk.expect_response("HTTP 200 OK")
    assert checked == {
        "variables": ["items", "order.id", "vip"],
        "parts": {"subject": ["order.id"], "body": ["items", "vip"], "html_body": []},
    }
    walk.screenshot("validate-variables")

    form = walk.post_form()
    assert form.locator("[name=subject]").input_value() == "Order {{ order.id }}"
    form.locator("[name=body]").fill("Hello\n{% if vip %}\nThanks!\n{% endfor %}")
    walk.submit(form)
    refused = walk.expect_response("HTTP 400 Bad Request")
    message = refused["body"][0]
    assert message.startswith("Template syntax error (line 4): Invalid block tag on line 4: 'endfor'")
    form = walk.post_form()
    assert field_errors(form, "body")[0] == message
    assert form.locator("[name=body]").input_value() == "Hello\n{% if vip %}\nThanks!\n{% endfor %}"
    walk.screenshot("validate-syntax-error")
    assert walk.broken == []
    walk.finished = True
