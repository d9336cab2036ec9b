"""Swagger UI at /api/docs/ in Chromium: it draws every operation from /api/schema/, runs one,
and loads nothing from anywhere but our own server (no CDN)."""

import json
import os
import urllib.request
from urllib.parse import urlsplit

import pytest
from playwright import sync_api as playwright_sync

from emailsystem.core.tests.browser import ACTION_TIMEOUT_MS, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def schema_operations(base_url: str) -> int:
    """How many operations the served schema has (test_schema.py lists them by name)."""
    with urllib.request.urlopen(base_url + "/api/schema/?format=json", timeout=10) as response:  # noqa: S310
        paths = json.loads(response.read())["paths"]
    return sum(len(item) for item in paths.values())


def test_swagger_ui_shows_and_runs_the_api_from_our_own_server(dev_server, tmp_path):
    base_url, _workdir = dev_server
    operations = schema_operations(base_url)
    assert operations >= 20, "the schema lost its operations"
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
            assert page.locator(".opblock").count() == operations
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
