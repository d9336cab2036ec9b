"""Rendering templates with a per-send context, in a sandboxed Django template engine.

Templates are written by admins but rendered with contexts that any user sends, so the engine
is deliberately small: no template loading ({% include %}, {% extends %}), no {% load %},
no {% debug %} or {% url %}, no context processors, and nothing but the JSON context in scope
(so no settings, no ORM objects). Output size is capped, and so is the work a render may do:
loops stop after RENDER_MAX_LOOP_ITERATIONS (nested loops over a user's list would otherwise
spin without writing anything), and the filters that build text of a size their argument
chooses (center, ljust, rjust, floatformat, stringformat) refuse sizes past the output cap.
"""

import copy
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, Library, Node, Template, TemplateSyntaxError, defaultfilters, defaulttags

logger = logging.getLogger(__name__)

# RFC 5322 caps a header line at 998 characters (the stored subject's column, too).
SUBJECT_MAX_LENGTH = 998

# Tags of the default library that have no business in an email: they reach outside the
# context (debug dumps sys.modules, url reverses our routes, load pulls in more code), or
# write as much text as a context value asks for (lorem).
_DENIED_TAGS = {"debug", "load", "url", "csrf_token", "lorem"}
# Loop iterations one render may run, all loops together: far beyond any real email (a
# 1,000-row table nested three deep is 3,000), far below a worker stuck for minutes.
RENDER_MAX_LOOP_ITERATIONS = 100_000
# Decimal places, widths and precisions a filter may be asked for.
_MAX_FORMAT_NUMBER = 1000


class RenderLimitExceeded(Exception):
    """A render tried to do more work than an email can need."""


class _LoopIterationCounter(Node):
    """Put first in every loop body: counts the render's iterations and stops it past the limit."""

    def render(self, context: Context) -> str:
        count = context.render_context.get("loop_iterations", 0) + 1
        if count > RENDER_MAX_LOOP_ITERATIONS:
            raise RenderLimitExceeded(f"loops run more than {RENDER_MAX_LOOP_ITERATIONS} times")
        context.render_context["loop_iterations"] = count
        return ""


def _bounded_for(parser: Any, token: Any) -> Node:
    node = defaulttags.do_for(parser, token)
    node.nodelist_loop.insert(0, _LoopIterationCounter())
    return node


register = Library()
for _name, _compile in defaulttags.register.tags.items():
    if _name not in _DENIED_TAGS:
        register.tag(_name, _compile)
register.tag("for", _bounded_for)


def _refuse_large_numbers(argument: Any, limit: int) -> None:
    if any(int(digits) > limit for digits in re.findall(r"\d+", str(argument))):
        raise RenderLimitExceeded(f"a filter was asked for a size above {limit}")


def _sized_filter(name: str, limit: Callable[[], int]) -> None:
    original = defaultfilters.register.filters[name]

    def bounded(value: Any, argument: Any = None) -> Any:
        _refuse_large_numbers(argument, limit())
        return original(value) if argument is None else original(value, argument)

    register.filter(name, bounded, is_safe=getattr(original, "is_safe", False))


for _name in ("center", "ljust", "rjust"):
    _sized_filter(_name, lambda: settings.TEMPLATE_RENDER_MAX_CHARS)
for _name in ("floatformat", "stringformat"):
    _sized_filter(_name, lambda: _MAX_FORMAT_NUMBER)


class _SandboxEngine(Engine):
    # Later libraries win on a name: ours replace the default tags and the sized filters.
    default_builtins = ["django.template.defaultfilters", "emailsystem.emails.rendering"]


@cache
def _engine(*, autoescape: bool) -> Engine:
    # loaders=[] so that nothing can read a template file from disk.
    return _SandboxEngine(loaders=[], autoescape=autoescape, libraries={})


@lru_cache(maxsize=512)
def _compiled(source: str, *, autoescape: bool) -> Template:
    """Compiled templates are reusable and thread-safe to render; compiling is most of the cost."""
    return _engine(autoescape=autoescape).from_string(source)


def _compile(source: str, *, autoescape: bool) -> Template:
    """`_compiled`, with blocks nested past Python's recursion limit reported as a syntax error."""
    try:
        return _compiled(source, autoescape=autoescape)
    except RecursionError:
        raise TemplateSyntaxError("blocks are nested too deeply") from None


def validate_template_syntax(value: str) -> None:
    """Model field validator: the text must compile as a template."""
    try:
        _compile(value, autoescape=False)
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
        template = _compile(source, autoescape=autoescape)
    except TemplateSyntaxError as error:
        raise RenderError(f"The template's {field} cannot be rendered: {error}", field="template") from None
    try:
        output = template.render(Context(context, autoescape=autoescape))
    except TemplateSyntaxError as error:
        raise RenderError(f"The template's {field} cannot be rendered: {error}", field="template") from None
    except RenderLimitExceeded as error:
        raise RenderError(
            f"The template's {field} does too much work with this context: {error}.", field="context"
        ) from None
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

    Each part renders from its own copy of `context`: templates call methods that take no
    argument, and `{{ items.pop }}` or `{{ data.clear }}` would otherwise change what the next
    part sees and what the log stores as the send's context.
    """
    rendered_subject = _render_one(subject, copy.deepcopy(context), autoescape=False, field="subject").strip()
    if any(char in rendered_subject for char in "\r\n\0"):
        raise RenderError("A context value puts a line break into the subject.", field="context")
    if not rendered_subject:
        raise RenderError("The rendered subject is empty.", field="context")
    if len(rendered_subject) > SUBJECT_MAX_LENGTH:
        raise RenderError(f"The rendered subject is longer than {SUBJECT_MAX_LENGTH} characters.", field="context")
    return RenderedEmail(
        subject=rendered_subject,
        body=_render_one(body, copy.deepcopy(context), autoescape=False, field="body"),
        html_body=_render_one(html_body, copy.deepcopy(context), autoescape=True, field="html_body")
        if html_body
        else "",
    )
