"""Each part of an email renders from its own copy of the context, however plain the context."""

from emailsystem.emails.rendering import template_render


def test_a_name_a_tag_sets_in_the_subject_is_not_seen_by_the_body_nor_stored():
    context = {"name": "Ada"}

    rendered = template_render(
        subject="{% cycle 'x' 'y' as name silent %}Hi",
        body="Hello {{ name }}",
        html_body="<p>{{ name }}</p>",
        context=context,
    )

    assert (rendered.body, rendered.html_body) == ("Hello Ada", "<p>Ada</p>")
    assert context == {"name": "Ada"}


def test_a_method_that_changes_a_list_in_one_part_does_not_change_the_next():
    context = {"items": [1, 2, 3]}

    rendered = template_render(subject="Last {{ items.pop }}", body="{{ items|length }}", context=context, html_body="")

    assert (rendered.subject, rendered.body) == ("Last 3", "3")
    assert context == {"items": [1, 2, 3]}
