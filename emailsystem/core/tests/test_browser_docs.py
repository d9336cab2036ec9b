"""Swagger UI at /api/docs/ in Chromium: it draws every operation from /api/schema/, runs one,
and loads nothing from anywhere but our own server (no CDN)."""

import os
from urllib.parse import urlsplit

import pytest
from playwright import sync_api as playwright_sync

from emailsystem.core.tests.browser import ACTION_TIMEOUT_MS, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OPERATIONS = 18  # as listed in test_schema.py


def test_swagger_ui_shows_and_runs_the_api_from_our_own_server(dev_server, tmp_path):
    base_url, _workdir = dev_server
    requested: list[str] = []
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(ACTION_TIMEOUT_MS)
            page.on("request", lambda request: requested.append(request.url))

            page.goto(base_url + "/api/docs/")
            page.locator(".opblock").first.wait_for()
            assert page.locator(".opblock").count() == OPERATIONS
            assert page.get_by_text("emailsystem API").first.is_visible()
            page.screenshot(path=str(tmp_path / "swagger-ui.png"), full_page=True)

            # Run the public template list from the page: Swagger UI calls our API and shows the answer.
            operation = page.locator("#operations-emails-emails_email_template_list")
            operation.locator(".opblock-summary").click()
            operation.get_by_role("button", name="Try it out").click()
            operation.get_by_role("button", name="Execute").click()
            status = operation.locator(".live-responses-table .response .response-col_status").first
            status.wait_for()
            assert status.inner_text().strip() == "200"
        finally:
            browser.close()

    hosts = {urlsplit(url).netloc for url in requested if not url.startswith("data:")}
    assert hosts == {urlsplit(base_url).netloc}, hosts
    assert any(url.endswith("swagger-ui-bundle.js") for url in requested)
    assert any("/api/schema/" in url for url in requested)
