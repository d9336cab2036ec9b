"""Rendering templates with a per-send context, in a sandboxed Django template engine.

Templates are written by admins but rendered with contexts that any user sends, so the engine
is deliberately small: no template loading ({% include %}, {% extends %}), no {% load %},
no {% debug %} or {% url %}, no context processors, and nothing but the JSON context in scope
(so no settings, no ORM objects). Output size is capped.
"""

import logging
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, Library, Template, TemplateSyntaxError, defaulttags

logger = logging.getLogger(__name__)

# Tags of the default library that have no business in an email: they reach outside the
# context (debug dumps sys.modules, url reverses our routes, load pulls in more code).
_DENIED_TAGS = {"debug", "load", "url", "csrf_token"}

register = Library()
for _name, _compile in defaulttags.register.tags.items():
    if _name not in _DENIED_TAGS:
        register.tag(_name, _compile)


class _SandboxEngine(Engine):
    default_builtins = ["emailsystem.emails.rendering", "django.template.defaultfilters"]


@cache
def _engine(*, autoescape: bool) -> Engine:
    # loaders=[] so that nothing can read a template file from disk.
    return _SandboxEngine(loaders=[], autoescape=autoescape, libraries={})


@lru_cache(maxsize=512)
def _compiled(source: str, *, autoescape: bool) -> Template:
    """Compiled templates are reusable and thread-safe to render; compiling is most of the cost."""
    return _engine(autoescape=autoescape).from_string(source)


def validate_template_syntax(value: str) -> None:
    """Model field validator: the text must compile as a template."""
    try:
        _compiled(value, autoescape=False)
    except TemplateSyntaxError as error:
        raise ValidationError(f"Template syntax error: {error}", code="template_syntax") from None


def validate_no_line_breaks(value: str) -> None:
    """Header fields must stay one line: a CR or LF would let the value inject headers."""
    if any(char in value for char in "\r\n\0"):
        raise ValidationError("Must not contain line breaks or NUL characters.", code="line_break")


class RenderError(Exception):
    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body: str
    html_body: str


def _render_one(source: str, context: dict[str, Any], *, autoescape: bool, field: str) -> str:
    try:
        template = _compiled(source, autoescape=autoescape)
    except TemplateSyntaxError as error:
        raise RenderError(f"The template's {field} cannot be rendered: {error}", field="template") from None
    try:
        output = template.render(Context(context, autoescape=autoescape))
    except TemplateSyntaxError as error:
        raise RenderError(f"The template's {field} cannot be rendered: {error}", field="template") from None
    except Exception as error:  # user data meets an admin's template: any failure is bad input
        # Tags and filters raise whatever their input provokes ({% for %} over a number raises
        # TypeError, |divisibleby:0 ZeroDivisionError); none of it is a server fault.
        logger.info("rendering the %s with the given context failed: %r", field, error)
        raise RenderError(
            f"The template's {field} cannot be rendered with this context: {type(error).__name__}: {error}"[:500],
            field="context",
        ) from None
    if len(output) > settings.TEMPLATE_RENDER_MAX_CHARS:
        raise RenderError(
            f"The rendered {field} is longer than {settings.TEMPLATE_RENDER_MAX_CHARS} characters.", field="context"
        )
    return output


def template_render(*, subject: str, body: str, html_body: str, context: dict[str, Any]) -> RenderedEmail:
    """Render subject and bodies. The HTML body escapes context values; subject and text do not.

    Raises RenderError naming the request field at fault: `context` when a value made the
    subject multi-line or the output too long, `template` when the template itself fails.
    """
    rendered_subject = _render_one(subject, context, autoescape=False, field="subject").strip()
    if any(char in rendered_subject for char in "\r\n\0"):
        raise RenderError("A context value puts a line break into the subject.", field="context")
    if not rendered_subject:
        raise RenderError("The rendered subject is empty.", field="context")
    return RenderedEmail(
        subject=rendered_subject,
        body=_render_one(body, context, autoescape=False, field="body"),
        html_body=_render_one(html_body, context, autoescape=True, field="html_body") if html_body else "",
    )
