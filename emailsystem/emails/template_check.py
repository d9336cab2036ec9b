"""What a template's text uses from the context, read off its compiled nodes (for the API's
template validation). Nothing is rendered.

A template uses a variable when any part of it reads that name from the send's context: a
`{{ }}` prints it, an `{% if %}` tests it, a `{% for %}` loops over it, a filter takes it as
its argument (`{{ total|add:shipping }}`), or a tag such as `{% with %}` or `{% cycle %}`
reads it. Names the template binds itself are not the context's: loop variables and
`forloop` inside their loop, `{% with %}` names inside their block, and `as` names of
`{% cycle %}`, `{% regroup %}` and similar tags after them. A variable is reported by its
whole dotted path (`order.id`), each once.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from django.template import Engine, Node, NodeList, TemplateSyntaxError
from django.template.base import FilterExpression, Variable
from django.template.defaulttags import FilterNode, ForNode, IfNode, RegroupNode, TemplateLiteral, WithNode

# Template parts, in the order a send renders them.
PARTS = ("subject", "body", "html_body")
# Names Django resolves without the context.
_BUILTIN_NAMES = {"True", "False", "None"}


class _CheckingEngine(Engine):
    # The sandbox's tags and filters, as sends render them (rendering.py); debug on, so a
    # syntax error carries its line.
    default_builtins = ["emailsystem.emails.sandbox"]


@cache
def _engine() -> Engine:
    return _CheckingEngine(loaders=[], libraries={}, debug=True)


class TemplateSourceError(Exception):
    """A template part does not compile."""

    def __init__(self, *, field: str, message: str, line: int | None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.line = line


@dataclass(frozen=True)
class TemplateVariables:
    variables: list[str]  # every part's, sorted
    by_part: dict[str, list[str]]  # part name -> its variables, sorted


def template_variables(*, subject: str, body: str, html_body: str = "") -> TemplateVariables:
    """The context variables the three parts use; raises TemplateSourceError for the first
    part (in PARTS order) that does not compile."""
    sources = {"subject": subject, "body": body, "html_body": html_body}
    by_part = {}
    for part in PARTS:
        try:
            template = _engine().from_string(sources[part])
        except TemplateSyntaxError as error:
            debug = getattr(error, "template_debug", None) or {}
            raise TemplateSourceError(field=part, message=str(error), line=debug.get("line")) from None
        except RecursionError:
            raise TemplateSourceError(field=part, message="blocks are nested too deeply", line=None) from None
        by_part[part] = sorted(set(_nodelist_variables(template.nodelist, frozenset())))
    every = sorted({name for names in by_part.values() for name in names})
    return TemplateVariables(variables=every, by_part=by_part)


def _nodelist_variables(nodes: NodeList, bound: frozenset[str]) -> Iterator[str]:
    """The variables `nodes` read; `bound` are the names the template set around them."""
    for node in nodes:
        yield from _node_variables(node, bound)
        name = _as_name(node)
        if name:  # `{% cycle a b as name %}` and the like bind a name for what follows
            bound = bound | {name}


def _node_variables(node: Node, bound: frozenset[str]) -> Iterator[str]:
    if isinstance(node, ForNode):
        yield from _expression_variables(node.sequence, bound)
        # The parser gives ForNode NodeLists; the stubs also allow the constructor's list[str].
        yield from _nodelist_variables(cast(NodeList, node.nodelist_loop), bound | set(node.loopvars) | {"forloop"})
        yield from _nodelist_variables(cast(NodeList, node.nodelist_empty), bound)
        return
    if isinstance(node, WithNode):
        for expression in node.extra_context.values():
            yield from _expression_variables(expression, bound)
        yield from _nodelist_variables(node.nodelist, bound | set(node.extra_context))
        return
    if isinstance(node, IfNode):
        for condition, nodelist in node.conditions_nodelists:
            yield from _condition_variables(condition, bound)
            yield from _nodelist_variables(nodelist, bound)
        return
    if isinstance(node, FilterNode):  # `{% filter upper %}` applies its filters to the block's own text
        yield from _nodelist_variables(node.nodelist, bound)
        return
    if isinstance(node, RegroupNode):  # its `by` expression reads the items, not the context
        yield from _expression_variables(node.target, bound)
        return
    for value in vars(node).values():
        for item in _flatten(value):
            if isinstance(item, FilterExpression):
                yield from _expression_variables(item, bound)
    for attribute in node.child_nodelists:
        yield from _nodelist_variables(getattr(node, attribute, None) or NodeList(), bound)


def _condition_variables(condition: Any, bound: frozenset[str]) -> Iterator[str]:
    """An {% if %} condition is a tree of operators over TemplateLiterals (None for {% else %})."""
    if condition is None:
        return
    if isinstance(condition, TemplateLiteral):
        yield from _expression_variables(condition.value, bound)
        return
    for side in (getattr(condition, "first", None), getattr(condition, "second", None)):
        yield from _condition_variables(side, bound)


def _expression_variables(expression: Any, bound: frozenset[str]) -> Iterator[str]:
    if not isinstance(expression, FilterExpression):
        return
    yield from _variable_name(expression.var, bound)
    for _filter, arguments in expression.filters:
        for is_lookup, argument in arguments:
            if is_lookup:
                yield from _variable_name(argument, bound)


def _variable_name(variable: Any, bound: frozenset[str]) -> Iterator[str]:
    if isinstance(variable, Variable) and variable.lookups:
        root = variable.lookups[0]
        if root not in bound and root not in _BUILTIN_NAMES:
            yield ".".join(variable.lookups)


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _flatten(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _flatten(item)]
    return [value]


def _as_name(node: Node) -> str | None:
    for attribute in ("variable_name", "var_name", "asvar", "target_var"):
        name = getattr(node, attribute, None)
        if isinstance(name, str) and name:
            return name
    return None
