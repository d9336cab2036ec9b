"""A sent email's HTML body on its admin page: rendered in a sandboxed srcdoc frame, and as escaped source."""

import html as html_lib
import re

import pytest

from emailsystem.emails.tests.admin_pages import email_page, logged_in
from emailsystem.emails.tests.factories import sent_email

pytestmark = pytest.mark.django_db
HOSTILE = (
    "<p>Hello &amp; welcome</p>"
    "<script>document.title='pwned'</script>"
    '<img src="https://tracker.example/open.gif" onerror="parent.document.title=\'pwned\'">'
    '"></iframe><script>alert(1)</script>'
)


def iframe(page: str) -> str:
    match = re.search(r'<iframe id="html-preview"[^>]*></iframe>', page)
    assert match, page
    return match.group(0)


def test_the_body_is_in_a_sandboxed_frame_with_no_permission_and_escaped_into_srcdoc(admin):
    email = sent_email(user=admin, html_body=HOSTILE)

    page = email_page(logged_in(admin), email.pk)
    frame = iframe(page)

    assert re.search(r"\ssandbox(\s|>)", frame), "sandbox with no allow-* token"
    assert "allow-" not in frame
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame).group(1)
    document = html_lib.unescape(srcdoc)
    assert document.endswith(HOSTILE), "the browser gets the body exactly as sent"
    assert document.startswith('<meta http-equiv="Content-Security-Policy" content="default-src \'none\';')
    # Nowhere on the page does the body's markup appear unescaped.
    assert "<script>document.title='pwned'</script>" not in page
    assert "<script>alert(1)</script>" not in page


def test_the_source_is_shown_escaped(admin):
    email = sent_email(user=admin, html_body=HOSTILE)

    page = email_page(logged_in(admin), email.pk)
    source = re.search(r'<details id="html-source">.*?<pre>(.*?)</pre>', page, re.S).group(1)

    assert "<" not in source
    assert html_lib.unescape(source) == HOSTILE


def test_an_email_without_an_html_body_says_so(admin):
    email = sent_email(user=admin, html_body="")

    page = email_page(logged_in(admin), email.pk)

    assert 'id="html-preview"' not in page
    assert "This email has no HTML body" in page
