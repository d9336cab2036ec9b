"""Reading the admin's pages in tests: a logged-in client and what a sent email's page shows."""

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from django.test import Client

# How every datetime in the admin reads: seconds and the zone.
ADMIN_DATETIME = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC\b")


def logged_in(user, *, enforce_csrf_checks: bool = False) -> Client:
    browser = Client(enforce_csrf_checks=enforce_csrf_checks)
    browser.force_login(user)
    return browser


@dataclass(frozen=True)
class TimelineRow:
    kind: str
    time: str
    step: str
    recipients: str
    detail: str


class _TimelineParser(HTMLParser):
    """Collects the rows of `<div id="timeline">`'s table: the row's kind (its class) and each cell's text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[TimelineRow] = []
        self._in_timeline = False
        self._depth = 0
        self._row: dict[str, str] | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "div" and attributes.get("id") == "timeline":
            self._in_timeline, self._depth = True, 0
        if not self._in_timeline:
            return
        if tag == "div":
            self._depth += 1
        classes = (attributes.get("class") or "").split()
        if tag == "tr" and classes and classes[0].startswith("timeline-"):
            self._row = {"kind": classes[0].removeprefix("timeline-")}
        elif tag == "td" and self._row is not None:
            self._cell = classes[0].removeprefix("timeline-") if classes else None
            self._row[self._cell or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        if not self._in_timeline:
            return
        if tag == "td":
            self._cell = None
        elif tag == "tr" and self._row is not None:
            cells = {name: self._row.get(name, "").strip() for name in TimelineRow.__annotations__}
            self.rows.append(TimelineRow(**cells))
            self._row = None
        elif tag == "div":
            self._depth -= 1
            self._in_timeline = self._depth > 0

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell is not None:
            self._row[self._cell] += data


def timeline(html: str) -> list[TimelineRow]:
    """The timeline rows of a sent email's admin page, in page order."""
    parser = _TimelineParser()
    parser.feed(html)
    return parser.rows


def email_page(browser: Client, email_id: int) -> str:
    response = browser.get(f"/admin/emails/sentemail/{email_id}/change/")
    assert response.status_code == 200, response.status_code
    return response.content.decode()
