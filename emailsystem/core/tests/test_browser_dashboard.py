"""The admin's delivery dashboard in Chromium: admin login, charts drawn from real sends, staff only.

Same development server and browser as test_browser.py (its fixtures), so embedded delivery
really sends the emails the charts count. Screenshots go where that test puts them.
"""

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_EMAIL = "admin@example.com"
STAFF_ONLY = re.compile(r"correct .* and password for a staff account")


def api(base_url: str, path: str, payload: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    request = urllib.request.Request(  # noqa: S310 (the local development server)
        base_url + "/api/v1/" + path, data=json.dumps(payload).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def admin_login(page, base_url: str, username: str, password: str) -> None:
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_the_dashboard_draws_charts_of_real_sends_for_staff_and_refuses_everyone_else(dev_server, walk):
    base_url, workdir = dev_server
    admin_password = (workdir / "var" / "demo-admin.txt").read_text().strip()
    page = walk.page

    # Data: two sends through the API (seven recipients, five at one domain), and a user who is not staff,
    # whose registration mails one more email (the link to verify bob's address): three emails, eight recipients.
    token = api(base_url, "users/login/", {"username": ADMIN_EMAIL, "password": admin_password})["token"]
    at_org = [f"r{n}@example.org" for n in range(5)]
    api(base_url, "emails/sent-email/", {"recipients": at_org, "subject": "s", "body": "b"}, token)
    api(
        base_url,
        "emails/sent-email/",
        {"recipients": ["a@example.com", "b@example.net"], "subject": "s", "body": "b"},
        token,
    )
    api(
        base_url,
        "users/register/",
        {"email": "bob@example.com", "username": "bob", "password": "plum-orchard-lantern-7"},
    )

    # Anonymous: the dashboard sends to the admin login. A logged-in user who is not staff is refused there.
    walk.open("/admin/dashboard/")
    page.wait_for_url(re.compile(r"/admin/login/\?next=/admin/dashboard/"))
    admin_login(page, base_url, "bob@example.com", "plum-orchard-lantern-7")
    expect(page.get_by_text(STAFF_ONLY)).to_be_visible()
    assert page.locator("#sends-per-hour").count() == 0
    # Logged in through the browsable API's login instead, bob has a session; the admin still refuses it.
    walk.open("/api-auth/login/")
    admin_login(page, base_url, "bob@example.com", "plum-orchard-lantern-7")
    page.wait_for_url(base_url + "/api/v1/")
    walk.open("/admin/dashboard/")
    page.wait_for_url(re.compile(r"/admin/login/\?next=/admin/dashboard/"))
    expect(page.get_by_text("You are authenticated as bob@example.com, but are not authorized")).to_be_visible()
    assert page.locator("#sends-per-hour").count() == 0
    walk.screenshot("dashboard-refused-non-staff")

    # The admin logs in with the admin's own form, finds the dashboard on the index, opens it.
    walk.open("/admin/login/")
    admin_login(page, base_url, ADMIN_EMAIL, admin_password)
    page.wait_for_url(base_url + "/admin/")
    link = page.locator("#dashboard-link").get_by_role("link", name="Delivery dashboard")
    expect(link).to_be_visible()
    walk.screenshot("admin-index-dashboard-link")
    link.click()
    page.wait_for_url(base_url + "/admin/dashboard/")
    expect(page.get_by_role("heading", name="Delivery dashboard")).to_be_visible()

    # Sends per hour: visible bars whose values add up to the two emails.
    sends = page.locator("#sends-per-hour svg")
    assert sends.is_visible() and sends.bounding_box()["width"] > 400
    bars = sends.locator("rect.bar")
    assert bars.count() >= 1 and bars.first.is_visible()
    assert sum(int(bar.get_attribute("data-value")) for bar in bars.all()) == 3
    assert page.locator("#emails-week").inner_text() == "3" and page.locator("#recipients-week").inner_text() == "8"

    # Outcomes: every recipient delivered by the embedded worker (the page reloads until they are).
    outcome_bars = page.locator("#outcomes-per-day svg rect.bar[data-series=sent]")
    for _ in range(20):
        if outcome_bars.count() and sum(int(bar.get_attribute("data-value")) for bar in outcome_bars.all()) == 8:
            break
        page.wait_for_timeout(500)
        page.reload()
    assert sum(int(bar.get_attribute("data-value")) for bar in outcome_bars.all()) == 8
    assert outcome_bars.first.is_visible()
    assert page.locator("#outcomes-per-day .legend").get_by_text("sent (8)").is_visible()

    # Queues: none in embedded mode, and the page says so. Domains: example.org ranks by latency.
    assert page.locator("#queues .embedded-mode").get_by_text("Embedded mode").is_visible()
    assert page.locator("#slowest-domains td", has_text="example.org").is_visible()
    assert page.locator("#failing-domains").get_by_text("No failed deliveries.").is_visible()
    walk.screenshot("dashboard")
    walk.finished = True
