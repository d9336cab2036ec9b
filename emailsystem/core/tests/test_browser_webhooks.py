"""Outbound webhook endpoints as people handle them, in Chromium: a user creates one on the
browsable API (a bad event type refused first, naming it), sees its secret once and its
deliveries; an admin finds it in the admin without the secret.

The development server is the one `make run` starts. The endpoint's URL is a public address, so
no setting is needed; nothing is delivered (the server runs without a broker). Screenshots go to
BROWSER_ARTIFACTS_DIR (default: tmp_path).
"""

import json
import re

import pytest
from playwright.sync_api import expect

from emailsystem.core.tests.browser import (
    artifacts_dir,
    chromium_walk,
    log_in_on_the_api_login_page,
    new_person,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "readme-admin-passphrase-1"  # the dev_server fixture's demo admin
ENDPOINTS = "/api/v1/webhooks/endpoints/"
HOOK = "https://93.184.215.14/hooks/billing"


def test_a_user_creates_an_endpoint_in_the_browser_and_an_admin_sees_it_without_its_secret(dev_server, tmp_path):
    base_url, _workdir = dev_server
    email, _username = new_person(dev_server)

    with chromium_walk(base_url, artifacts_dir(tmp_path / "user")) as walk:
        page = walk.page
        log_in_on_the_api_login_page(walk, email)
        walk.open(ENDPOINTS)
        assert walk.expect_response("HTTP 200 OK")["count"] == 0

        raw = walk.raw_form()
        raw.locator("[name=_content]").fill(json.dumps({"url": HOOK, "events": ["email.sent", "email.exploded"]}))
        walk.submit(raw)
        refused = walk.expect_response("HTTP 400 Bad Request")
        assert "email.exploded" in refused["events"][0]
        walk.screenshot("endpoint-refused")

        walk.raw_form().locator("[name=_content]").fill(json.dumps({"url": HOOK, "events": ["email.delivered"]}))
        walk.submit(walk.raw_form())
        created = walk.expect_response("HTTP 201 Created")
        secret = created["secret"]
        assert secret.startswith("whsec_") and created["url"] == HOOK and created["enabled"] is True
        walk.screenshot("endpoint-created")

        walk.open(f"{ENDPOINTS}{created['id']}/")
        shown = walk.expect_response("HTTP 200 OK")
        assert shown["events"] == ["email.delivered"] and "secret" not in shown
        assert secret not in page.content()
        walk.open(f"{ENDPOINTS}{created['id']}/deliveries/")
        assert walk.expect_response("HTTP 200 OK")["count"] == 0
        assert walk.broken == []
        walk.finished = True

    with chromium_walk(base_url, artifacts_dir(tmp_path / "admin")) as admin:
        page = admin.page
        admin.open("/admin/")
        page.wait_for_url(re.compile(r"/admin/login/"))
        page.locator("#id_username").fill(ADMIN_EMAIL)
        page.locator("#id_password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(base_url + "/admin/")
        page.get_by_role("link", name="Webhook endpoints").click()
        row = page.locator("#result_list tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(HOOK)
        row.get_by_role("link").first.click()
        expect(page.locator("#id_url")).to_have_value(HOOK)
        assert secret not in page.content() and "whsec_" not in page.content()
        admin.screenshot("admin-endpoint")
        assert admin.broken == []
        admin.finished = True
