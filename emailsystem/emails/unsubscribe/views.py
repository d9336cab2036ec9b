"""/u/<token>: the one-click unsubscribe endpoint (RFC 8058) and its page.

A mailbox provider's unsubscribe button POSTs `List-Unsubscribe=One-Click` to the URL in the
List-Unsubscribe header; a person who opens the URL gets a page whose button POSTs the same.
A GET never changes anything: mail scanners and link previews follow every link they see.
The signed token is the only authority, so no login and no CSRF token are asked for.
"""

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from emailsender.unsubscribe import ONE_CLICK_FIELD, ONE_CLICK_VALUE
from emailsystem.emails.unsubscribe.links import InvalidUnsubscribeToken, unsubscribe_link_read
from emailsystem.emails.unsubscribe.services import recipient_unsubscribe

BUTTON = "Unsubscribe"


@dataclass(frozen=True)
class Page:
    heading: str
    message: str
    show_form: bool = False


CONFIRM = Page(
    "Unsubscribe from these emails?",
    "Press the button to stop this sender's emails to you through this service. Nothing changes until you do.",
    show_form=True,
)
DONE = Page(
    "You are unsubscribed",
    "This sender's emails through this service will no longer be sent to you. If that was a mistake, ask the "
    "sender to add you back.",
)
INVALID = Page(
    "This unsubscribe link is not valid",
    "It was changed or cut short on its way here. Open the link exactly as it is in the email, or reply to the "
    "email and ask the sender to stop.",
)
NOT_ONE_CLICK = Page(
    "Nothing was changed",
    f"An unsubscribe request carries {ONE_CLICK_FIELD}={ONE_CLICK_VALUE}. Press the button to unsubscribe.",
    show_form=True,
)


def _page(request: HttpRequest, page: Page, *, status: int = 200) -> HttpResponse:
    context = {
        "heading": page.heading,
        "message": page.message,
        "show_form": page.show_form,
        "field": ONE_CLICK_FIELD,
        "value": ONE_CLICK_VALUE,
        "button": BUTTON,
    }
    return render(request, "emails/unsubscribe.html", context, status=status)


@csrf_exempt  # RFC 8058: the provider's POST carries no CSRF token; the signed token is the authority
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the page with the button. POST with List-Unsubscribe=One-Click: unsubscribe (200,
    again 200 for a repeat). A token this service did not sign: 400, whatever the method."""
    try:
        link = unsubscribe_link_read(token)
    except InvalidUnsubscribeToken:
        return _page(request, INVALID, status=400)
    if request.method != "POST":
        return _page(request, CONFIRM)
    if request.POST.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
        return _page(request, NOT_ONE_CLICK, status=400)
    recipient_unsubscribe(link=link)
    return _page(request, DONE)
