"""Driving the browsable API and the admin in Debian's Chromium (Playwright), for the browser tests.

Screenshots go to BROWSER_ARTIFACTS_DIR when it is set (CI keeps them), else to the test's tmp_path.
"""

import contextlib
import email
import email.policy
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_sync

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous for a 2-core machine, short enough that a hung page fails the test quickly.
ACTION_TIMEOUT_MS = 10_000
# The development server's demo admin (its password is in var/demo-admin.txt) and the people tests register.
ADMIN_EMAIL = "admin@example.com"
PASSWORD = "plum-orchard-lantern-7"
_people = count(1)


class Walkthrough:
    """One browser tab on the development server, with numbered screenshots and response readers.

    `journey` prefixes the screenshots' names, for tests that share one artifacts folder.
    """

    def __init__(self, page: Any, base_url: str, artifacts: Path, journey: str = "") -> None:
        self.page = page
        self.base_url = base_url
        self.artifacts = artifacts
        self.journey = journey
        self.shots: list[Path] = []
        self.finished = False
        # Anything a page fails to load (styles, scripts, icons) or a script error.
        self.broken: list[str] = []
        page.on("pageerror", lambda error: self.broken.append(f"script error: {error}"))
        page.on("response", self._note_failed_subresource)

    def _note_failed_subresource(self, response: Any) -> None:
        request = response.request
        # The Raw data form posts with a script and writes the answer as the page: a refusal is shown, not broken.
        answer_shown = request.resource_type in ("xhr", "fetch") and request.method != "GET"
        if request.resource_type != "document" and not answer_shown and response.status >= 400:
            self.broken.append(f"{response.status} {response.url}")

    def open(self, path: str) -> Any:
        """Go to `path` on the server; the document's response."""
        return self.page.goto(self.base_url + path)

    def screenshot(self, name: str, *, element: str | None = None) -> None:
        """The whole page, or one element: a full-page capture leaves a sandboxed frame's content out."""
        prefix = f"{self.journey}-" if self.journey else ""
        path = self.artifacts / f"{prefix}{len(self.shots) + 1:02d}-{name}.png"
        if element:
            self.page.locator(element).screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)

    def reload_until(self, locator: Any, text: str, *, seconds: float) -> None:
        """Reload the page until `locator` shows `text`: the page is rendered once, delivery goes on behind it."""
        deadline = time.monotonic() + seconds
        while not any(text in item for item in locator.all_inner_texts()):
            if time.monotonic() > deadline:
                pytest.fail(f"the page never showed {text!r}; it shows {locator.all_inner_texts()}")
            time.sleep(0.3)
            self.page.reload()

    def response_status(self) -> str:
        """The status line the browsable API prints above the response, e.g. "HTTP 201 Created"."""
        return self.page.locator(".response-info .meta b").first.inner_text().strip()

    def wait_for_response(self, status: str) -> None:
        """Wait until the page (a new one, or one a form's script rewrote) shows this status line."""
        playwright_sync.expect(self.page.locator(".response-info .meta b").first).to_have_text(status)

    def response_json(self) -> Any:
        """The response body as the browsable API shows it, below the headers."""
        text = self.page.locator(".response-info pre").first.inner_text()
        _headers, _, body = text.replace("\r\n", "\n").partition("\n\n")
        return json.loads(body)

    def expect_response(self, status: str) -> Any:
        """The response body, after checking the status line; a wrong status shows the whole response."""
        try:
            self.wait_for_response(status)
        except AssertionError:
            shown = self.page.locator(".response-info").inner_text()[:2000]
            pytest.fail(f"expected {status}, the page shows:\n{shown}")
        self.page.wait_for_load_state()  # the page's scripts pick the form tab on load
        return self.response_json()

    def post_form(self) -> Any:
        """The browsable API's HTML form for POST (its tab chosen first, when the page has tabs)."""
        tab = self.page.locator("a[name=html-tab]")
        if tab.count():
            tab.click()
        return self.page.locator("#post-object-form form")

    def raw_form(self) -> Any:
        """The browsable API's Raw data form for POST (its tab chosen first, when the page has tabs)."""
        tab = self.page.locator("a[name=raw-tab]")
        if tab.count():
            tab.click()
        return self.page.locator("#post-generic-content-form form")

    def submit(self, form: Any) -> None:
        """Press the form's POST button and wait for the page that answers: a new document for the HTML
        form, the same document rewritten by DRF's script for the Raw data form."""
        self.page.evaluate("document.documentElement.dataset.answered = 'not yet'")
        form.get_by_role("button", name="POST").click()
        self.page.wait_for_function(
            "document.documentElement && document.documentElement.dataset.answered !== 'not yet'"
        )

    def extra_action(self, name: str) -> None:
        """Open one of the page's Extra Actions (DRF's dropdown of a viewset's actions) by its link."""
        self.page.locator("#extra-actions-menu").click()
        with self.page.expect_navigation():
            self.page.locator("[aria-labelledby=extra-actions-menu]").get_by_role("link", name=name).click()

    def navbar(self) -> str:
        return self.page.locator(".navbar").inner_text()


def artifacts_dir(tmp_path: Path) -> Path:
    artifacts = Path(os.environ.get("BROWSER_ARTIFACTS_DIR") or tmp_path / "screenshots")
    artifacts.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {artifacts}")
    return artifacts


@contextlib.contextmanager
def chromium_page() -> Iterator[Any]:
    """A tab of headless Chromium at 1280x900, with the tests' action timeout."""
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(ACTION_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def chromium_walk(
    base_url: str, artifacts: Path, *, kind: type[Walkthrough] = Walkthrough, journey: str = ""
) -> Iterator[Any]:
    """A Walkthrough (or a subclass, `kind`) on `base_url`; a test that stops early leaves a screenshot of where."""
    with chromium_page() as page:
        walkthrough = kind(page, base_url, artifacts, journey)
        yield walkthrough
        if not walkthrough.finished:
            walkthrough.screenshot("where-it-stopped")


def api_call(base_url: str, method: str, path: str, payload: Any = None, token: str | None = None) -> tuple[int, Any]:
    """One JSON request to the server's API (`path` under /api/v1/): (status, decoded body)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(base_url + "/api/v1/" + path, data=data, headers=headers, method=method)  # noqa: S310 (the local development server)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def api_token(base_url: str, email: str, password: str) -> str:
    status, body = api_call(base_url, "POST", "users/login/", {"username": email, "password": password})
    assert status == 200, body
    return body["token"]


def new_person(server: tuple[str, Path], *, verify: bool = True) -> tuple[str, str]:
    """A registered user of this test's own on `server` (base URL, folder): (email, username). With `verify`,
    they have followed the link mailed to them (from the outbox folder, as a mail client would open it), so
    they send From it."""
    base_url, workdir = server
    number = next(_people)
    email, username = f"person{number}@example.com", f"person{number}"
    status, body = api_call(
        base_url, "POST", "users/register/", {"email": email, "username": username, "password": PASSWORD}
    )
    assert status == 201, body
    if verify:
        with urllib.request.urlopen(verification_link(workdir, email), timeout=10) as opened:  # noqa: S310 (the local server)
            assert opened.status == 200
    return email, username


def admin_password(workdir: Path) -> str:
    """The demo admin's password, as make run prints it."""
    return (workdir / "var" / "demo-admin.txt").read_text().strip()


def admin_token(server: tuple[str, Path]) -> str:
    """A login token of the demo admin on `server` (base URL, folder)."""
    base_url, workdir = server
    return api_token(base_url, ADMIN_EMAIL, admin_password(workdir))


def template_as_admin(server: tuple[str, Path], **fields: str) -> dict[str, Any]:
    """A template created through the API by the demo admin on `server`: its JSON."""
    status, template = api_call(server[0], "POST", "emails/email-template/", fields, token=admin_token(server))
    assert status == 201, template
    return template


def log_in_on_the_api_login_page(walk: Walkthrough, email: str, password: str = PASSWORD) -> None:
    walk.open("/api/v1/users/login/")
    form = walk.post_form()
    form.locator("[name=username]").fill(email)
    form.locator("[name=password]").fill(password)
    form.get_by_role("button", name="POST").click()
    walk.expect_response("HTTP 200 OK")


def field_errors(form: Any, name: str) -> list[str]:
    """The messages the form shows under one field."""
    group = form.locator(".form-group", has=form.page.locator(f"[name={name}]"))
    return [text for text in group.locator(".help-block").all_inner_texts() if text]


def outbox_dir(workdir: Path) -> Path:
    """Where the development server in `workdir` writes each email as an .eml file (make run's var/outbox/)."""
    return workdir / "var" / "outbox"


def outbox_messages(workdir: Path) -> list[EmailMessage]:
    """Every email the development server has written so far, oldest first."""
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(outbox_dir(workdir).glob("*.eml"))
    ]


# Embedded delivery usually writes the file well within a second; this bounds the wait.
OUTBOX_WAIT_SECONDS = 15


def _only_link(message: EmailMessage) -> str:
    """The first URL in the plain-text body."""
    body = message.get_body(("plain",))
    link = re.search(r"https?://\S+", body.get_content()) if body else None
    assert link, f"no link in {message['Subject']!r} to {message['To']}"
    return link[0]


def verification_link(workdir: Path, address: str) -> str:
    """The newest verification link mailed to `address`, as a person finds it in the email, once it is written."""
    deadline = time.monotonic() + OUTBOX_WAIT_SECONDS
    while True:
        links = [
            _only_link(message)
            for message in outbox_messages(workdir)
            if message["To"] == address and message["Subject"] == "Confirm your email address"
        ]
        if links:
            return links[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no verification email to {address} in {outbox_dir(workdir)}")
        time.sleep(0.2)
