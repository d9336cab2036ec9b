"""The template library of the rendering sandbox, and the limits on the work a render may do.

Every tag and filter a template can use is registered here (rendering.py's engine loads only
this library: Django's default tags but the denied ones, and its default filters, bounded).
Templates are written by admins but rendered with
contexts any user sends, so:

- loops stop after RENDER_MAX_LOOP_ITERATIONS, all loops of a render together (nested loops
  over a user's list would otherwise spin without writing anything);
- output is counted as it is produced, and the render stops as soon as it passes
  TEMPLATE_RENDER_MAX_CHARS: a loop would otherwise build its whole output in memory before
  anything could measure it (5,000 iterations of a 200 KB value are 1 GB);
- filters that build text of a size their argument chooses (center, ljust, rjust, floatformat,
  stringformat, join) refuse sizes past their limits before building anything, and every
  filter's text result is checked against the cap, so chained filters cannot multiply it.

`instrument()` rewires a compiled template's nodes to count their output.
"""

import functools
import re
from collections.abc import Callable
from functools import cache
from typing import Any, cast

from django.conf import settings
from django.template import Context, Library, Node, NodeList, defaultfilters, defaulttags
from django.template.base import VariableNode
from django.template.defaulttags import FilterNode

# Tags of the default library that have no business in an email: they reach outside the
# context (debug dumps sys.modules, url reverses our routes, load pulls in more code), or
# write as much text as a context value asks for (lorem).
_DENIED_TAGS = {"debug", "load", "url", "csrf_token", "lorem"}
# Loop iterations one render may run, all loops together: far beyond any real email (a
# 1,000-row table nested three deep is 3,000), far below a worker stuck for minutes.
RENDER_MAX_LOOP_ITERATIONS = 100_000
# Decimal places, widths and precisions floatformat and stringformat may be asked for.
_MAX_FORMAT_NUMBER = 1000
# The render context's key for the characters produced so far.
_OUTPUT_KEY = "output_chars"
_FILTER_FLAGS = ("is_safe", "needs_autoescape", "expects_localtime")


class RenderLimitExceeded(Exception):
    """A render tried to do more work than an email can need."""


class OutputLimitExceeded(RenderLimitExceeded):
    """A render produced more text than TEMPLATE_RENDER_MAX_CHARS."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"output longer than {limit} characters")
        self.limit = limit


def output_limit() -> int:
    """The most characters one render may produce (TEMPLATE_RENDER_MAX_CHARS)."""
    return settings.TEMPLATE_RENDER_MAX_CHARS


def count_output(context: Context, chars: int) -> None:
    """Add `chars` to the render's output count; past the cap, stop the render."""
    total = (context.render_context.get(_OUTPUT_KEY) or 0) + chars
    if total > output_limit():
        raise OutputLimitExceeded(output_limit())
    context.render_context[_OUTPUT_KEY] = total


def _output_so_far(context: Context) -> int:
    return context.render_context.get(_OUTPUT_KEY) or 0


class _LoopIterationCounter(Node):
    """Put first in every loop body: counts the render's iterations and stops it past the limit."""

    child_nodelists = ()

    def render(self, context: Context) -> str:
        count = (context.render_context.get("loop_iterations") or 0) + 1
        if count > RENDER_MAX_LOOP_ITERATIONS:
            raise RenderLimitExceeded(f"loops run more than {RENDER_MAX_LOOP_ITERATIONS} times")
        context.render_context["loop_iterations"] = count
        return ""


def _bounded_for(parser: Any, token: Any) -> Node:
    node = defaulttags.do_for(parser, token)
    # The parser gives ForNode a NodeList; the stubs also allow the constructor's list[str].
    cast(NodeList, node.nodelist_loop).insert(0, _LoopIterationCounter())
    return node


register = Library()
for _name, _compile in defaulttags.register.tags.items():
    if _name not in _DENIED_TAGS:
        register.tag(_name, _compile)
register.tag("for", _bounded_for)


# Sizes are read exactly as the filters read them, so that no spelling int() accepts
# ("500_000_000", " 9 ", "+9", a float) gets past the check.


def _width(argument: Any) -> int:
    """center, ljust and rjust call int(argument); a value int() refuses makes the filter fail anyway."""
    try:
        return abs(int(argument))
    except (TypeError, ValueError, OverflowError):
        return 0


def _places(argument: Any) -> int:
    """floatformat strips its g/u suffixes, then calls int(); it ignores an argument int() refuses."""
    if isinstance(argument, str) and argument:
        if argument[-2:] in {"gu", "ug"}:
            argument = argument[:-2] or -1
        elif argument[-1] in {"g", "u"}:
            argument = argument[:-1] or -1
    return _width(argument)


def _format_spec_number(argument: Any) -> int:
    """stringformat's printf widths and precisions are runs of ASCII digits."""
    return max((int(digits) for digits in re.findall(r"[0-9]+", str(argument))), default=0)


def _joined_length(value: Any, argument: Any) -> int:
    """What join's separators alone add up to (the items are the context's, already bounded)."""
    try:
        count = len(value)
    except TypeError:
        return 0
    return len(str(argument)) * max(count - 1, 0)


# name -> (the size the argument asks for, the largest size allowed)
_SIZES: dict[str, tuple[Callable[[Any, Any], int], Callable[[], int]]] = {
    "center": (lambda _value, argument: _width(argument), output_limit),
    "ljust": (lambda _value, argument: _width(argument), output_limit),
    "rjust": (lambda _value, argument: _width(argument), output_limit),
    "floatformat": (lambda _value, argument: _places(argument), lambda: _MAX_FORMAT_NUMBER),
    "stringformat": (lambda _value, argument: _format_spec_number(argument), lambda: _MAX_FORMAT_NUMBER),
    "join": (_joined_length, output_limit),
}


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    size = _SIZES.get(name)

    @functools.wraps(original)  # Django reads the arguments a filter takes from the wrapped function
    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        if size is not None and args:
            asked, limit = size[0](value, args[0]), size[1]()
            if asked > limit:
                raise RenderLimitExceeded(f"the filter {name} was asked for a size above {limit}")
        result = original(value, *args, **kwargs)
        if isinstance(result, str) and len(result) > output_limit():
            raise OutputLimitExceeded(output_limit())
        return result

    return bounded


for _name, _filter in defaultfilters.register.filters.items():
    register.filter(
        _name,
        _bounded_filter(_name, _filter),
        **{flag: getattr(_filter, flag) for flag in _FILTER_FLAGS if hasattr(_filter, flag)},
    )


class _CountedFilterNode(FilterNode):
    """`{% filter %}`: its children count what they write; this adds what the filter grows it by."""

    def render(self, context: Context) -> str:
        before = _output_so_far(context)
        output = super().render(context)
        count_output(context, max(len(output) - (_output_so_far(context) - before), 0))
        return output


@cache
def _counted(cls: type[Node]) -> type[Node]:
    """`cls`, counting what each render writes. Only for nodes with no children of their own."""

    def render(self: Node, context: Context) -> str:
        output = cls.render(self, context)
        count_output(context, len(output) if isinstance(output, str) else 0)
        return output

    return type(f"Counted{cls.__name__}", (cls,), {"render": render})


def _has_children(node: Node) -> bool:
    return any(getattr(node, name, None) for name in node.child_nodelists)


def instrument(nodes: list[Node], *, variable_node: type[VariableNode]) -> None:
    """Make every node of a compiled template that writes text count it.

    Text, `{{ }}` (as `variable_node`, which must call count_output itself) and tags without
    children ({% cycle %}, {% firstof %}, {% now %}, {% widthratio %}, ...) count their own
    output; containers ({% for %}, {% if %}, {% with %}, ...) only join or pick their children's,
    so counting them too would count the same text twice; {% filter %} counts what its filter
    adds. `nodes` is every node of the template, nested ones included.
    """
    for node in nodes:
        if isinstance(node, VariableNode):
            node.__class__ = variable_node
        elif isinstance(node, FilterNode):
            node.__class__ = _CountedFilterNode
        elif not isinstance(node, _LoopIterationCounter) and not _has_children(node):
            node.__class__ = _counted(type(node))  # type: ignore[arg-type]  # classes hash; mypy checks type(node) as an instance
