"""One-click unsubscribe through the whole loop: API -> RabbitMQ -> sender process -> fake SendGrid,
whose request carries each recipient's own List-Unsubscribe headers; the mailbox provider's POST
to that URL over HTTP (a live server on 127.0.0.1); the next send skips the recipient.

Real PostgreSQL and RabbitMQ, `python -m emailsender` and `manage.py results` as processes. The
`stack` fixture is in conftest.py.
"""

import urllib.error
import urllib.request

import pytest

from emailsystem.emails.models import DeliveryStatus, Suppression
from emailsystem.emails.tests.pipeline import URL, all_settled, send, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq, pytest.mark.slow]


def http(url: str, body: bytes | None = None) -> tuple[int, str]:
    """A GET, or a form-encoded POST of `body`, as a mailbox provider makes it: no cookie, no CSRF token."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 (the live server)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_one_click_post_suppresses_the_next_send_to_that_recipient_for_that_user_only(
    stack, live_server, settings, user, user_client, other_client
):
    settings.PUBLIC_BASE_URL = live_server.url
    stack.start("sender"), stack.start("results")

    email_id = send(
        user_client, ["reader@example.com", "stays@example.com"], subject="News", body="b", unsubscribe=True
    )
    wait_until(lambda: all_settled([email_id]), stack, what="the newsletter settled as sent")

    [request] = stack.fake.requests
    headers = {p["to"][0]["email"]: p["headers"] for p in request.body["personalizations"]}
    links = {address: value["List-Unsubscribe"] for address, value in headers.items()}
    assert all(value["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for value in headers.values())
    assert all(link.startswith(f"<{live_server.url}/u/") and link.endswith(">") for link in links.values())
    assert links["reader@example.com"] != links["stays@example.com"]
    url = links["reader@example.com"][1:-1]

    # A scanner following the link changes nothing; the provider's POST unsubscribes, twice harmlessly.
    assert http(url)[0] == 200
    assert not Suppression.objects.exists()
    assert http(url + "x", b"List-Unsubscribe=One-Click")[0] == 400
    assert [http(url, b"List-Unsubscribe=One-Click")[0] for _ in range(2)] == [200, 200]
    [entry] = Suppression.objects.select_related("recipient")
    assert (entry.recipient.email, entry.reason, entry.user_id) == ("reader@example.com", "unsubscribe", user.pk)
    reader = next(
        r for r in user_client.get(f"{URL}{email_id}/").json()["recipients"] if r["email"] == "reader@example.com"
    )
    assert reader["status"] == DeliveryStatus.UNSUBSCRIBED and [e["event"] for e in reader["events"]] == ["unsubscribe"]

    # The same user's next send skips the reader; another user's does not.
    body = {"recipients": ["reader@example.com", "stays@example.com"], "subject": "s", "body": "b"}
    mine = user_client.post(URL, body, format="json").json()
    theirs = other_client.post(URL, body, format="json").json()
    assert [r["status"] for r in mine["recipients"]] == ["suppressed", "queued"]
    assert [r["status"] for r in theirs["recipients"]] == ["queued", "queued"]
    wait_until(lambda: all_settled([mine["id"], theirs["id"]]), stack, what="the next sends settled")
    sent_to = sorted(p["to"][0]["email"] for r in stack.fake.requests[1:] for p in r.body["personalizations"])
    assert sent_to == ["reader@example.com", "stays@example.com", "stays@example.com"]
    assert user_client.get(f"{URL}{mine['id']}/").json()["recipients"][0]["status"] == "suppressed"
