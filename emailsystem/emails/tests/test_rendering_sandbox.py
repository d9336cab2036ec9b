"""Templates render in a sandbox: nothing but the JSON context in reach, and bounded work.

Admins write templates, but any user chooses the context, so a context must not be able to
make a render reach the server's state or run without end.
"""

import pytest
from django.conf import settings

from emailsystem.emails.models import EmailTemplate, SentEmail
from emailsystem.emails.sandbox import RENDER_MAX_LOOP_ITERATIONS
from emailsystem.emails.tests.factories import EmailTemplateFactory

SENDS = "/api/v1/emails/sent-email/"
TEMPLATES = "/api/v1/emails/email-template/"
pytestmark = pytest.mark.django_db


def send_with(client, template, context):
    return client.post(
        SENDS, {"recipients": ["a@example.com"], "template": template.pk, "context": context}, format="json"
    )


def test_settings_request_user_and_orm_are_out_of_reach(user_client, user):
    body = (
        "[{{ settings.SECRET_KEY }}][{{ request.user }}][{{ user.password }}][{{ csrf_token }}][{{ perms }}]"
        "[{{ view }}][{{ sent_email.sender.password }}][{{ template.body }}][{{ name.upper }}]"
    )
    template = EmailTemplateFactory(subject="Hi", body=body, html_body=body)

    refused = send_with(user_client, template, {"name": "ada"})

    assert refused.status_code == 400
    assert refused.json()["context"] == [
        "The template uses variables the context does not give: settings.SECRET_KEY, request.user, user.password, "
        "csrf_token, perms, view, sent_email.sender.password, template.body."
    ]
    # Rendered as empty text where the template allows missing variables: still nothing in reach.
    template.allow_missing_variables = True
    template.save()
    response = send_with(user_client, template, {"name": "ada"})

    assert response.status_code == 202
    stored = SentEmail.objects.get()
    assert stored.body == "[][][][][][][][][ADA]"
    assert stored.html_body == stored.body
    assert settings.SECRET_KEY not in stored.body and user.password not in stored.body


@pytest.mark.parametrize(
    "source",
    ["{{ name.__class__ }}", "{% load static %}", "{% debug %}", "{% lorem 1000000 w %}", "{% include 'x.html' %}"],
)
def test_templates_that_reach_outside_the_context_are_refused_when_saved(admin_client_api, source):
    response = admin_client_api.post(TEMPLATES, {"name": "t", "subject": "s", "body": source}, format="json")

    assert response.status_code == 400
    assert "Template syntax error" in response.json()["body"][0]
    assert not EmailTemplate.objects.exists()


def test_loops_that_would_run_without_end_are_stopped_and_nothing_is_sent(user_client):
    # No output at all, so the output cap alone would never stop it: 100**3 iterations.
    spin = "{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}"
    template = EmailTemplateFactory(subject="Hi", body=spin)

    response = send_with(user_client, template, {"x": list(range(100))})

    assert response.status_code == 400
    message = response.json()["context"][0]
    assert f"loops run more than {RENDER_MAX_LOOP_ITERATIONS} times" in message
    assert not SentEmail.objects.exists()


def test_loops_of_a_real_email_render(user_client):
    table = "{% for row in rows %}{% for cell in row %}{{ cell }},{% endfor %};{% endfor %}"
    template = EmailTemplateFactory(subject="Hi", body=table, html_body="")

    response = send_with(user_client, template, {"rows": [[1, 2, 3]] * 1000})

    assert response.status_code == 202
    assert SentEmail.objects.get().body == "1,2,3,;" * 1000


@pytest.mark.parametrize(
    ("body", "context"),
    [
        ("{{ name|ljust:width }}", {"width": 10**9}),
        ("{{ name|center:width }}", {"width": "2000000"}),
        ("{{ name|rjust:width }}", {"width": 10**12}),
        ("{{ n|floatformat:places }}", {"places": 10**7}),
        ("{{ n|stringformat:spec }}", {"spec": "0999999999d"}),
        # int() reads underscores, surrounding whitespace and a sign, and so must the check.
        ("{{ name|rjust:width }}", {"width": "500_000_000"}),
        ("{{ name|ljust:width }}", {"width": " +2000000 "}),
        ("{{ n|floatformat:places }}", {"places": "200_000"}),
        ("{{ n|floatformat:places }}", {"places": " 200_000gu"}),
        ("{{ n|floatformat:places }}", {"places": "-200000u"}),
        ("{{ items|join:separator }}", {"items": [0] * 5000, "separator": "S" * 200_000}),
    ],
    ids=[
        "ljust",
        "center",
        "rjust",
        "floatformat",
        "stringformat",
        "rjust-underscores",
        "ljust-whitespace",
        "floatformat-underscores",
        "floatformat-suffixes",
        "floatformat-negative",
        "join",
    ],
)
def test_filters_asked_for_a_huge_size_are_refused(user_client, body, context):
    template = EmailTemplateFactory(subject="Hi", body=body)

    response = send_with(user_client, template, {"name": "Ada", "n": 1.5, **context})

    assert response.status_code == 400
    assert "does too much work" in response.json()["context"][0]
    assert not SentEmail.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "{% for item in items %}- {{ item }} from {{ company }}\n{% endfor %}",
        "{% for item in items %}{% cycle company company %}{% endfor %}",
        "{% for item in items %}{% firstof missing company %}{% endfor %}",
        "{% for item in items %}{% filter rjust:900000 %}{{ item }}{% endfilter %}{% endfor %}",
        "{% for item in items %}{% if item == 0 %}{% with c=company %}{{ c }}{% endwith %}{% endif %}{% endfor %}",
        "{{ quote|force_escape|force_escape }}",
    ],
    ids=["variable", "cycle", "firstof", "filter-tag", "nested-blocks", "chained-filters"],
)
def test_output_is_counted_as_it_is_produced_and_the_render_stops_past_the_cap(user_client, body):
    template = EmailTemplateFactory(subject="Hi", body=body, html_body="")
    context = {"company": "C" * 200_000, "items": [0] * 5000, "quote": '"' * 200_000}

    response = send_with(user_client, template, context)

    assert response.status_code == 400
    assert response.json()["context"] == ["The rendered body is longer than 1000000 characters."]
    assert not SentEmail.objects.exists()


def test_an_email_of_600_kb_built_by_nested_blocks_in_a_loop_is_counted_once(user_client):
    body = (
        "{% for row in rows %}{% if row %}{% with line=row %}{% spaceless %}{% autoescape off %}"
        "{{ line }}{% cycle '' '' %}{% endautoescape %}{% endspaceless %}{% endwith %}{% endif %}{% endfor %}"
        "{% filter upper %}{% for row in rows %}{% if forloop.first %}{{ row }}{% endif %}{% endfor %}{% endfilter %}"
    )
    template = EmailTemplateFactory(subject="Hi", body=body, html_body=body)

    response = send_with(user_client, template, {"rows": ["x" * 100] * 6000})

    assert response.status_code == 202, response.json()
    stored = SentEmail.objects.get()
    assert stored.body == "x" * 600_000 + "X" * 100
    assert stored.html_body == stored.body


def test_sized_filters_still_work_within_bounds(user_client):
    template = EmailTemplateFactory(
        subject="Hi", body="[{{ name|ljust:6 }}][{{ n|floatformat:2 }}][{{ n|stringformat:'05.1f' }}]", html_body=""
    )

    response = send_with(user_client, template, {"name": "Ada", "n": 1.5})

    assert response.status_code == 202
    assert SentEmail.objects.get().body == "[Ada   ][1.50][001.5]"


@pytest.mark.parametrize("tag", ["if a", "for a in b", "with a=b"])
def test_blocks_nested_past_the_recursion_limit_are_a_syntax_error_not_a_500(admin_client_api, tag):
    name = tag.split()[0]
    body = f"{{% {tag} %}}" * 3000 + f"{{% end{name} %}}" * 3000

    response = admin_client_api.post(TEMPLATES, {"name": "t", "subject": "s", "body": body}, format="json")

    assert response.status_code == 400
    assert response.json()["body"] == ["Template syntax error: blocks are nested too deeply"]
    assert not EmailTemplate.objects.exists()


def test_a_context_that_makes_the_subject_longer_than_a_header_line_is_refused(user_client, template):
    # Stored, it would overflow the subject's column and answer 500.
    response = send_with(user_client, template, {"name": "x" * 2000, "order": "42"})

    assert response.status_code == 400
    assert response.json()["context"] == ["The rendered subject is longer than 998 characters."]
    assert not SentEmail.objects.exists()


def test_a_template_calling_a_mutating_method_changes_neither_the_other_parts_nor_the_stored_context(user_client):
    # Templates call methods that take no argument: list.pop, dict.clear, ...
    template = EmailTemplateFactory(
        subject="Last: {{ items.pop }}{{ data.clear }}",
        body="Items {{ items }}, data {{ data }}",
        html_body="<p>{{ items.pop }} {{ items }}</p>",
    )
    context = {"items": [1, 2, 3], "data": {"a": 1}}

    response = send_with(user_client, template, context)

    assert response.status_code == 202, response.json()
    email = SentEmail.objects.get()
    assert email.subject == "Last: 3None"  # dict.clear() returns None
    assert email.body == "Items [1, 2, 3], data {'a': 1}"
    assert email.html_body == "<p>3 [1, 2]</p>"
    assert email.context == context
