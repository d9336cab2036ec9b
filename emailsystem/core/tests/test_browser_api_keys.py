"""API keys as people handle them, in Chromium: a user issues one on the browsable API, an
application sends with it, and an admin finds it in the admin and revokes it.

The development server (SQLite, embedded delivery to the outbox folder) is the one `make run`
starts; the application is plain HTTP with `Authorization: Bearer`. Screenshots of every step go
to BROWSER_ARTIFACTS_DIR (default: tmp_path).
"""

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from emailsystem.core.tests.browser import api_call, artifacts_dir, chromium_walk, verification_link

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "readme-admin-passphrase-1"  # the dev_server fixture's demo admin
PASSWORD = "plum-orchard-lantern-7"


def with_key(base_url: str, method: str, path: str, key: str, payload: Any = None) -> tuple[int, dict[str, str]]:
    """One request as an application makes it: (status, response headers)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(base_url + "/api/v1/" + path, data=data, headers=headers, method=method)  # noqa: S310 (the local development server)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_a_user_issues_a_send_key_in_the_browser_and_an_admin_revokes_it(dev_server, tmp_path):
    base_url, workdir = dev_server
    email = "billing-owner@example.com"
    status, body = api_call(
        base_url, "POST", "users/register/", {"email": email, "username": "billing-owner", "password": PASSWORD}
    )
    assert status == 201, body
    with urllib.request.urlopen(verification_link(workdir, email), timeout=10) as opened:  # noqa: S310 (the local server)
        assert opened.status == 200

    with chromium_walk(base_url, artifacts_dir(tmp_path / "user")) as walk:
        page = walk.page
        walk.open("/api/v1/users/login/")
        form = walk.post_form()
        form.locator("[name=username]").fill(email)
        form.locator("[name=password]").fill(PASSWORD)
        form.get_by_role("button", name="POST").click()
        walk.expect_response("HTTP 200 OK")

        # The keys page: its description, then the form that issues one.
        walk.open("/api/v1/users/api-keys/")
        expect(page.locator(".content-main .pull-left")).to_contain_text("Authorization: Bearer <key>")
        assert walk.expect_response("HTTP 200 OK")["count"] == 0
        form = walk.post_form()
        form.locator("[name=name]").fill("billing-app")
        form.locator("[name=scope]").select_option("send")
        walk.screenshot("key-form-filled")
        form.get_by_role("button", name="POST").click()
        issued = walk.expect_response("HTTP 201 Created")
        key = issued["key"]
        assert key.startswith("es_s_") and issued["prefix"] == key[:12] and issued["scope"] == "send"
        form = walk.post_form()  # the form is ready for the next key, empty: the key is in the answer only
        assert form.locator("[name=name]").input_value() == "" and form.locator("[name=key]").count() == 0
        walk.screenshot("key-issued")

        # Listed afterwards by its prefix; the key itself is not shown again.
        walk.open("/api/v1/users/api-keys/")
        listed = walk.expect_response("HTTP 200 OK")
        assert [(k["name"], k["prefix"]) for k in listed["results"]] == [("billing-app", issued["prefix"])]
        assert key not in page.content()
        walk.screenshot("key-listed")
        assert walk.broken == []
        walk.finished = True

    # The application: it sends, and may do nothing else.
    send = {"recipients": ["customer@example.org"], "subject": "Invoice 7", "body": "Attached."}
    assert with_key(base_url, "POST", "emails/sent-email/", key, send)[0] == 202
    assert with_key(base_url, "GET", "emails/email-template/", key)[0] == 403

    with chromium_walk(base_url, artifacts_dir(tmp_path / "admin")) as admin:
        page = admin.page
        admin.open("/admin/")
        page.wait_for_url(re.compile(r"/admin/login/"))
        page.locator("#id_username").fill(ADMIN_EMAIL)
        page.locator("#id_password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(base_url + "/admin/")
        page.get_by_role("link", name="API keys").click()
        page.locator("#searchbar").fill(email)
        page.locator("#searchbar").press("Enter")
        row = page.locator("#result_list tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(issued["prefix"])
        expect(row).to_contain_text("billing-app")
        assert key not in page.content()
        admin.screenshot("admin-finds-the-key")
        row.locator("input[name=_selected_action]").check()
        page.locator("select[name=action]").select_option("revoke")
        page.get_by_role("button", name="Go").click()
        expect(page.locator(".messagelist")).to_contain_text("Revoked 1 API key(s).")
        expect(page.locator("#result_list tbody tr img[alt=True]")).to_have_count(1)  # the revoked column
        admin.screenshot("admin-revoked-the-key")
        assert admin.broken == []
        admin.finished = True

    # The application's next request is refused.
    status, headers = with_key(base_url, "POST", "emails/sent-email/", key, send)
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="api"'
