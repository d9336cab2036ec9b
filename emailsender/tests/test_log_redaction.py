"""The sender logs no SendGrid API key, even with every logger at DEBUG."""

import logging

from emailsender.clients import SendGridClient
from emailsender.logs import SecretMaskFilter

KEY = "SG.recognisable-sender-key.5d1f"


def test_a_debug_log_of_a_sendgrid_call_shows_no_api_key(fake, caplog):
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    payload = {
        "personalizations": [{"to": [{"email": "a@example.com"}]}],
        "from": {"email": "from@example.com"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "b"}],
    }
    fake.set_mode(status=401, count=1)

    answers = [SendGridClient(KEY, fake.url, timeout=2).send(payload).status_code for _ in range(2)]

    assert answers == [401, 202]
    assert any("HEADERS" in record.getMessage() for record in caplog.records), "the library's header log is gone"
    assert not [record.getMessage() for record in caplog.records if KEY in record.getMessage()]
    assert KEY not in caplog.text


def test_the_filter_masks_bearer_tokens_in_any_shape():
    def masked(message, *args):
        record = logging.LogRecord("x", logging.DEBUG, __file__, 1, message, args, None)
        SecretMaskFilter().filter(record)
        return record.getMessage()

    assert masked("HEADERS: {'Authorization': 'Bearer SG.abc.def'}") == "HEADERS: {'Authorization': '***'}"
    assert masked("Authorization: bearer %s", "SG.abc") == "Authorization: ***"
    assert masked("authorization=Token %s&x=1", "short") == "authorization=***&x=1"
    assert masked("nothing secret %d", 3) == "nothing secret 3"
