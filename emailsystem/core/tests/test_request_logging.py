"""Each request is logged once, by the server's access line (gunicorn's, or runserver's).

Django's `django.request` logger would add a second line for every 4xx; it keeps 5xx, whose
line carries the traceback. (`test_make_run.py` counts the lines on `make run`'s terminal.)
"""

import logging

import pytest


@pytest.mark.django_db
def test_a_4xx_answer_adds_no_log_line_of_its_own(api_client, caplog):
    with caplog.at_level(logging.DEBUG):
        response = api_client.post("/api/v1/users/login/", {}, format="json")
        missing = api_client.get("/api/v1/no-such-page/")

    assert (response.status_code, missing.status_code) == (400, 404)
    assert [record for record in caplog.records if record.name.startswith("django.request")] == []


def test_a_5xx_is_still_logged_with_its_traceback():
    logger = logging.getLogger("django.request")

    assert not logger.isEnabledFor(logging.WARNING)
    assert logger.isEnabledFor(logging.ERROR)
    assert logger.propagate and logging.getLogger("django").handlers == []
