"""Rendering templates with a per-send context, in a sandboxed Django template engine.

Templates are written by admins but rendered with contexts that any user sends, so the engine
is deliberately small: no template loading ({% include %}, {% extends %}), no {% load %},
no {% debug %} or {% url %}, no context processors, and nothing but the JSON context in scope
(so no settings, no ORM objects). Output size is capped as it is produced, and so is the work
a render may do (sandbox.py holds the tags, the filters and those limits).

A variable the template prints (`{{ name }}`, `{{ order.total|floatformat:2 }}`) that the
context does not give is reported, so that a send is refused rather than going out as
"Hi , welcome aboard." Names only tested (`{% if name %}`), looped over, or printed with a
fallback (`|default`, `|yesno`) are optional. A template with
`allow_missing_variables` renders them as empty text instead.
"""

import copy
import logging
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, Node, Template, TemplateSyntaxError
from django.template.base import VariableDoesNotExist, VariableNode, render_value_in_context

from emailsender.headers import has_encoded_line_break
from emailsystem.emails.sandbox import OutputLimitExceeded, RenderLimitExceeded, count_output, instrument

logger = logging.getLogger(__name__)

# RFC 5322 caps a header line at 998 characters (the stored subject's column, too).
SUBJECT_MAX_LENGTH = 998


class _Missing(str):
    """The engine's `string_if_invalid`: empty text (so filters and {% if %} treat it as ""),
    recognisable by identity when it reaches the output unchanged."""


_MISSING = _Missing()
# Filters that give a missing value something to print: the template expects it may be absent.
_FALLBACK_FILTERS = {"default", "yesno"}


class _ReportingContext(Context):
    """A render context that notes every top-level name it was asked for and did not hold."""

    def __init__(self, values: dict[str, Any], *, autoescape: bool) -> None:
        super().__init__(values, autoescape=autoescape)
        self.unresolved: list[str] = []
        self.missing: list[str] = []

    def __getitem__(self, key: str) -> Any:  # type: ignore[override]  # templates look names up as str
        try:
            return super().__getitem__(key)
        except KeyError:
            self.unresolved.append(key)
            raise


class _ReportingVariableNode(VariableNode):
    """`{{ ... }}` that adds its expression to `context.missing` when the context lacks its variable.

    The value is resolved once, as Django's own node does (templates may call methods, so a
    second resolution could change what the first saw).
    """

    def render(self, context: Context) -> str:
        expression = self.filter_expression
        failed_before = len(getattr(context, "unresolved", ()))
        try:
            value = expression.resolve(context)
        except UnicodeDecodeError:
            return ""
        if isinstance(context, _ReportingContext):
            fallback = any(getattr(func, "_filter_name", None) in _FALLBACK_FILTERS for func, _ in expression.filters)
            if value is _MISSING or (len(context.unresolved) > failed_before and not fallback):
                context.missing.append(str(expression.var))
        output = render_value_in_context(value, context)
        count_output(context, len(output))
        return output


class _SandboxEngine(Engine):
    # The sandbox's library holds every tag and filter a template may use.
    default_builtins = ["emailsystem.emails.sandbox"]


@cache
def _engine(*, autoescape: bool) -> Engine:
    # loaders=[] so that nothing can read a template file from disk.
    return _SandboxEngine(loaders=[], autoescape=autoescape, libraries={}, string_if_invalid=_MISSING)


@lru_cache(maxsize=512)
def _compiled(source: str, *, autoescape: bool) -> Template:
    """Compiled templates are reusable and thread-safe to render; compiling is most of the cost."""
    template = _engine(autoescape=autoescape).from_string(source)
    # The parser builds Django's own nodes; ours count what they write, and every {{ }}
    # reports what it lacks.
    instrument(template.nodelist.get_nodes_by_type(Node), variable_node=_ReportingVariableNode)
    return template


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


ENCODED_LINE_BREAK_MESSAGE = (
    "Must not contain an RFC 2047 encoded word (=?charset?q?...?=) that decodes to a line break or NUL."
)


def validate_no_line_breaks(value: str) -> None:
    """Header fields must stay one line: a CR or LF would let the value inject headers, and so
    would an encoded word that decodes to one (mail software decodes it, CVE-2024-6923)."""
    if any(char in value for char in "\r\n\0"):
        raise ValidationError("Must not contain line breaks or NUL characters.", code="line_break")
    if has_encoded_line_break(value):
        raise ValidationError(ENCODED_LINE_BREAK_MESSAGE, code="encoded_line_break")


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


def _render_one(source: str, values: dict[str, Any], *, autoescape: bool, field: str, missing: list[str]) -> str:
    """One part, rendered; the expressions it printed without a value are appended to `missing`."""
    try:
        template = _compile(source, autoescape=autoescape)
    except TemplateSyntaxError as error:
        raise RenderError(f"The template's {field} cannot be rendered: {error}", field="template") from None
    context = _ReportingContext(values, autoescape=autoescape)
    try:
        output = template.render(context)
    except TemplateSyntaxError as error:
        raise RenderError(f"The template's {field} cannot be rendered: {error}", field="template") from None
    except VariableDoesNotExist as error:  # a filter's argument ({{ total|add:shipping }}) is missing
        raise RenderError(
            f"The template uses variables the context does not give: {error.params[0]}.", field="context"
        ) from None
    except OutputLimitExceeded as error:
        raise RenderError(f"The rendered {field} is longer than {error.limit} characters.", field="context") from None
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
    missing.extend(context.missing)
    return output


_SCALARS = (str, int, float, bool, type(None))


def _own_copy(context: dict[str, Any]) -> dict[str, Any]:
    """A copy of `context` that one part's render may change without the others seeing it.

    Tags write names into the top level (`{% cycle ... as x %}`), which a shallow copy keeps
    apart; only dicts and lists have methods that change them (`{{ items.pop }}`), so a
    context of plain values needs no deep copy, which costs most of a small render.
    """
    if all(isinstance(value, _SCALARS) for value in context.values()):
        return dict(context)
    return copy.deepcopy(context)


def template_render(
    *, subject: str, body: str, html_body: str, context: dict[str, Any], allow_missing_variables: bool = False
) -> RenderedEmail:
    """Render subject and bodies. The HTML body escapes context values; subject and text do not.

    Raises RenderError naming the request field at fault: `context` when a value made the
    subject multi-line or the output too long, or when the template prints a variable the
    context does not give (unless `allow_missing_variables`); `template` when the template
    itself fails.

    Each part renders from its own copy of `context`: templates call methods that take no
    argument, and `{{ items.pop }}` or `{{ data.clear }}` would otherwise change what the next
    part sees and what the log stores as the send's context.
    """
    missing: list[str] = []
    rendered_subject = _render_one(
        subject, _own_copy(context), autoescape=False, field="subject", missing=missing
    ).strip()
    rendered_body = _render_one(body, _own_copy(context), autoescape=False, field="body", missing=missing)
    rendered_html = (
        _render_one(html_body, _own_copy(context), autoescape=True, field="html_body", missing=missing)
        if html_body
        else ""
    )
    if missing and not allow_missing_variables:
        names = ", ".join(dict.fromkeys(missing))
        raise RenderError(f"The template uses variables the context does not give: {names}.", field="context")
    if any(char in rendered_subject for char in "\r\n\0"):
        raise RenderError("A context value puts a line break into the subject.", field="context")
    if has_encoded_line_break(rendered_subject):
        field = "template" if has_encoded_line_break(subject) else "context"
        raise RenderError(
            "The rendered subject holds an RFC 2047 encoded word (=?charset?q?...?=) that decodes to a line break.",
            field=field,
        )
    if not rendered_subject:
        raise RenderError("The rendered subject is empty.", field="context")
    if len(rendered_subject) > SUBJECT_MAX_LENGTH:
        raise RenderError(f"The rendered subject is longer than {SUBJECT_MAX_LENGTH} characters.", field="context")
    return RenderedEmail(subject=rendered_subject, body=rendered_body, html_body=rendered_html)
