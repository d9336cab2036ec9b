"""Finding every email sent to an address (or part of one) from the sent-email list's search box."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from emailsystem.emails.models import SentEmail
from emailsystem.emails.selectors import sent_email_search
from emailsystem.emails.tests.admin_pages import logged_in
from emailsystem.emails.tests.factories import sent_email
from emailsystem.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
LIST = "/admin/emails/sentemail/"


@pytest.fixture
def emails(admin):
    """Five emails from two senders; carol is a recipient of three, once alongside another carol."""
    alice, bob = UserFactory(email="alice@example.org"), UserFactory(email="bob@example.org")
    return {
        "to_carol": sent_email(user=alice, recipients=["carol@example.com"], subject="Invoice"),
        "to_carols": sent_email(user=bob, recipients=["carol@example.com", "carol.two@example.com"], subject="Welcome"),
        "to_dave": sent_email(user=alice, recipients=["dave@example.net"], subject="Receipt for carol"),
        "to_carol_and_dave": sent_email(
            user=bob, recipients=["dave@example.net", "carol@example.com"], subject="Reminder"
        ),
        "to_erin": sent_email(user=bob, recipients=["erin@example.net"], subject="Welcome"),
    }


def search(browser, term):
    response = browser.get(LIST, {"q": term})
    assert response.status_code == 200
    return [email.pk for email in response.context["cl"].result_list]


def test_a_whole_address_lists_every_email_sent_to_it_across_senders_newest_first(admin, emails):
    found = search(logged_in(admin), "carol@example.com")

    assert found == [emails["to_carol_and_dave"].pk, emails["to_carols"].pk, emails["to_carol"].pk]


def test_the_address_is_matched_whatever_its_case_and_surrounding_spaces(admin, emails):
    assert search(logged_in(admin), "  Carol@Example.COM ") == search(logged_in(admin), "carol@example.com")


def test_part_of_an_address_finds_each_email_once_even_with_two_matching_recipients(admin, emails):
    found = search(logged_in(admin), "carol")

    # "to_carols" has two recipients matching "carol" and appears once; "to_dave" matches by subject.
    assert sorted(found) == sorted(
        [emails["to_carol"].pk, emails["to_carols"].pk, emails["to_dave"].pk, emails["to_carol_and_dave"].pk]
    )
    assert len(found) == len(set(found))


def test_a_domain_finds_the_emails_sent_to_anyone_there(admin, emails):
    assert sorted(search(logged_in(admin), "@example.net")) == sorted(
        [emails["to_dave"].pk, emails["to_carol_and_dave"].pk, emails["to_erin"].pk]
    )


def test_several_words_must_all_match(admin, emails):
    assert search(logged_in(admin), "dave@example.net carol@example.com") == [emails["to_carol_and_dave"].pk]
    assert search(logged_in(admin), "welcome erin") == [emails["to_erin"].pk]


def test_subjects_senders_and_numbers_are_still_found(admin, emails):
    browser = logged_in(admin)

    assert sorted(search(browser, "welcome")) == sorted([emails["to_carols"].pk, emails["to_erin"].pk])
    assert sorted(search(browser, "alice@example")) == sorted([emails["to_carol"].pk, emails["to_dave"].pk])
    assert search(browser, str(emails["to_erin"].pk)) == [emails["to_erin"].pk]


def test_an_address_nobody_was_sent_to_lists_nothing(admin, emails):
    browser = logged_in(admin)
    response = browser.get(LIST, {"q": "nobody@example.com"})

    assert list(response.context["cl"].result_list) == []
    assert "0 results" in response.content.decode()


def test_a_whole_address_is_one_equality_lookup_without_like_or_distinct(admin, emails):
    browser = logged_in(admin)

    with CaptureQueriesContext(connection) as queries:
        search(browser, "carol@example.com")

    # The page's rows (the sender filter's own query lists the senders, not the emails).
    listing = [query["sql"] for query in queries if query["sql"].startswith('SELECT "emails_sentemail"."id"')]
    assert listing, "the list's query ran"
    for sql in listing:
        assert "LIKE" not in sql.upper()
        assert "DISTINCT" not in sql.upper()
        assert '"emails_recipient"."email" = \'carol@example.com\'' in sql or "\"email\" = 'carol@example.com'" in sql


def test_the_whole_address_lookup_can_use_the_indexes(emails):
    """With sequential scans priced out, every table is reached through an index: one exists for each step."""
    queryset = sent_email_search(queryset=SentEmail.objects.order_by("-created", "-id"), term="carol@example.com")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()

    assert re.search(r"Index (Only )?Scan using \S+ on emails_recipient", plan), plan
    assert "Seq Scan" not in plan, plan
