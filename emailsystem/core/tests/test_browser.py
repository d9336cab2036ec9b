"""The browser walkthrough of docs/getting-started.md, clicked through in Chromium against the development server.

Every step uses the pages a newcomer sees: the browsable API's HTML forms, its Filters dialog,
DRF's session login and Django admin. A screenshot of each step goes to BROWSER_ARTIFACTS_DIR
(default: the test's tmp_path) for a person to look at.
"""

import json
import re
import time

import pytest

from emailsystem.core.tests.browser import outbox_dir, verification_link

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Embedded delivery usually finishes in well under a second; this bounds the wait for "sent".
DELIVERY_WAIT_SECONDS = 10
RECIPIENTS = ["a@example.com", "b@example.com", "c@example.com"]
FILTERED_RECIPIENT = "b@example.com"


def test_readme_browser_walkthrough(dev_server, walk):
    base_url, workdir = dev_server
    admin_password = (workdir / "var" / "demo-admin.txt").read_text().strip()  # what make run prints
    page = walk.page

    # 1. The browsable API root.
    walk.open("/api/v1/")
    assert page.title().startswith("Api Root")
    assert page.locator(".page-header h1").inner_text() == "Api Root"
    root = walk.expect_response("HTTP 200 OK")
    assert set(root) == {
        "register",
        "login",
        "logout",
        "me",
        "verify-email",
        "api-keys",
        "email-template",
        "sent-email",
        "suppressions",
    }
    assert page.locator("link[href*='bootstrap']").count() > 0
    assert page.locator(".navbar").is_visible()
    walk.screenshot("api-root")

    # 2. Register with the HTML form (a POST-only page: the form, no 405 above it).
    walk.open("/api/v1/users/register/")
    assert page.locator(".response-info").is_hidden()
    form = page.locator("#post-object-form form")
    form.locator("[name=email]").fill("ada@example.com")
    form.locator("[name=username]").fill("ada")
    form.locator("[name=password]").fill("plum-orchard-lantern-7")
    assert form.locator("[name=password]").get_attribute("type") == "password"
    walk.screenshot("register-form-filled")
    form.get_by_role("button", name="POST").click()
    registered = walk.expect_response("HTTP 201 Created")
    assert registered["email"] == "ada@example.com" and registered["username"] == "ada"
    assert registered["email_verified"] is False
    assert registered["message"].startswith("We mailed a link to ada@example.com")
    walk.screenshot("register-201")
    # The link to verify ada's address lands in var/outbox/ (the walkthrough goes on as the admin,
    # whose address createsuperuser verified).
    assert verification_link(workdir, "ada@example.com").startswith(base_url + "/api/v1/users/verify-email/?token=")

    # 3. Log in as the admin with the "Log in" link; DRF's login page sends us back here.
    registered_url = page.url
    page.locator(".navbar").get_by_role("link", name="Log in").click()
    page.wait_for_url(re.compile(r"/api-auth/login/"))
    page.locator("#id_username").fill("admin@example.com")
    page.locator("#id_password").fill(admin_password)
    walk.screenshot("login-form-filled")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(registered_url)
    walk.screenshot("login-redirected-back")
    # The register page ignores sessions (it authenticates nobody), so its navbar still says
    # "Log in"; the root shows who is logged in.
    page.locator(".breadcrumb").get_by_role("link", name="Api Root").click()
    page.wait_for_url(base_url + "/api/v1/")
    assert page.locator(".navbar").get_by_text("admin@example.com").is_visible()
    assert page.locator(".navbar").get_by_role("link", name="Log in").count() == 0
    walk.screenshot("logged-in")

    # 4. Create a template with the HTML form.
    walk.open("/api/v1/emails/email-template/")
    walk.expect_response("HTTP 200 OK")
    form = page.locator("#post-object-form form")
    form.locator("[name=name]").fill("welcome")
    form.locator("[name=subject]").fill("Hello {{ name }}")
    form.locator("[name=body]").fill("Hi {{ name }}, welcome aboard.")
    form.locator("[name=html_body]").fill("<p>Hi {{ name }}, welcome aboard.</p>")
    walk.screenshot("template-form-filled")
    form.get_by_role("button", name="POST").click()
    template = walk.expect_response("HTTP 201 Created")
    assert template["name"] == "welcome"
    assert template["subject"] == "Hello {{ name }}"
    assert template["body"] == "Hi {{ name }}, welcome aboard."
    assert template["html_body"] == "<p>Hi {{ name }}, welcome aboard.</p>"
    walk.screenshot("template-201")

    # 5. Send it to three recipients with the HTML form: recipients one per line (or comma
    # separated), the template picked by name, the context as a JSON object.
    walk.open("/api/v1/emails/sent-email/")
    assert walk.expect_response("HTTP 200 OK")["count"] == 0
    page.locator("a[name=html-tab]").click()
    form = page.locator("#post-object-form form")
    form.locator("[name=recipients]").fill("\n".join(RECIPIENTS))
    form.locator("select[name=template]").select_option(label="welcome")
    form.locator("[name=context]").fill(json.dumps({"name": "Ada"}))
    walk.screenshot("send-html-form-filled")
    form.get_by_role("button", name="POST").click()
    accepted = walk.expect_response("HTTP 202 Accepted")
    assert accepted["message"] == "Email sent. It might take a while to deliver."
    assert sorted(recipient["email"] for recipient in accepted["recipients"]) == RECIPIENTS
    assert page.get_by_text("Email sent. It might take a while to deliver.").is_visible()
    walk.screenshot("send-202")

    # 6. Filter the log by one recipient, by the walkthrough's URL; delivery takes a moment.
    walk.open(f"/api/v1/emails/sent-email/?recipient={FILTERED_RECIPIENT}")
    deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
    while True:
        log = walk.expect_response("HTTP 200 OK")
        assert log["count"] == 1, log
        assert [email["id"] for email in log["results"]] == [accepted["id"]]
        statuses = {recipient["email"]: recipient["status"] for recipient in log["results"][0]["recipients"]}
        if set(statuses.values()) == {"sent"} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
        page.reload()
    assert statuses == dict.fromkeys(RECIPIENTS, "sent")
    assert log["results"][0]["status"] == "sent"
    assert log["results"][0]["subject"] == "Hello Ada"
    walk.screenshot("log-filtered-sent")

    # The same filter through the browsable API's Filters dialog, which does have a recipient
    # input: its form submits ?recipient=...&start_time=&end_time=&status= by GET.
    walk.open("/api/v1/emails/sent-email/")
    page.get_by_role("button", name="Filters").click()
    dialog = page.locator("#filtersModal")
    # Wait out Bootstrap's fade-in, so the screenshot shows the dialog rather than half of it.
    page.wait_for_function("getComputedStyle(document.querySelector('#filtersModal')).opacity === '1'")
    assert dialog.get_by_text("Field filters").is_visible()
    dialog.locator("[name=recipient]").fill(FILTERED_RECIPIENT)
    walk.screenshot("filters-dialog")
    # By CSS, not by role: the dialog keeps DRF's aria-hidden="true" while it is open.
    dialog.locator("button[type=submit]", has_text="Submit").click()
    page.wait_for_url(re.compile(r"\?recipient=b%40example\.com&"))
    log = walk.expect_response("HTTP 200 OK")
    assert log["count"] == 1
    assert log["results"][0]["id"] == accepted["id"]
    walk.screenshot("filters-dialog-result")

    # A filter that matches nothing lists nothing, so the count of 1 above came from the filter.
    walk.open("/api/v1/emails/sent-email/?recipient=nobody@example.com")
    assert walk.expect_response("HTTP 200 OK")["count"] == 0

    # 7. One .eml file per recipient in the outbox folder (and one with ada's link).
    written = [path.read_text(errors="replace") for path in outbox_dir(workdir).rglob("*.eml")]
    assert len(written) == 3 + 1
    for address in RECIPIENTS:
        assert sum(address in eml and "Hello Ada" in eml for eml in written) == 1, address

    # 8. The admin, with the same session: the sent email's page lists its three recipients as sent.
    walk.open("/admin/")
    assert page.locator("#site-name").is_visible()
    assert page.get_by_text("Site administration").is_visible()
    walk.screenshot("admin-index")
    page.get_by_role("link", name="Sent emails").click()
    page.get_by_role("link", name=str(accepted["id"]), exact=True).click()
    page.wait_for_url(re.compile(rf"/admin/emails/sentemail/{accepted['id']}/change/"))
    assert page.get_by_role("heading", name="View sent email").is_visible()
    assert page.get_by_role("heading", name=f"#{accepted['id']} Hello Ada").is_visible()
    rows = page.locator("#deliveries-group tbody tr.has_original")
    admin_statuses = {
        row.locator("td.field-recipient").inner_text().strip(): row.locator("td.field-status").inner_text().strip()
        for row in rows.all()
    }
    assert admin_statuses == dict.fromkeys(RECIPIENTS, "Sent"), admin_statuses
    walk.screenshot("admin-sent-email")

    assert walk.broken == []
    walk.finished = True
