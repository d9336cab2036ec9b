"""MkDocs hook: the API reference page (reference/api.md), rendered from the OpenAPI schema at build time.

drf-spectacular generates the schema in a child process (`manage.py spectacular`) with the settings
`make run` uses, so the page shows what `/api/schema/` serves and nothing generated is committed. The
page is plain Markdown: it needs no script or CDN, and `mkdocs build --strict` checks its links.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

PAGE = "reference/api.md"
METHODS = ("get", "post", "put", "patch", "delete")
# The Makefile's DEV_ENV (DEBUG needs no DJANGO_SECRET_KEY) and the project's settings.
SCHEMA_ENV = {"DJANGO_SETTINGS_MODULE": "emailsystem.settings", "DJANGO_DEBUG": "1", "LOG_FORMAT": "plain"}
# Generating takes about 2 s; a minute means something hangs.
SCHEMA_TIMEOUT_SECONDS = 60
LIMITS = (
    ("minLength", "min length {}"),
    ("maxLength", "max length {}"),
    ("minItems", "min items {}"),
    ("maxItems", "max items {}"),
    ("maxProperties", "max keys {}"),
    ("minimum", "minimum {}"),
    ("maximum", "maximum {}"),
)

JsonObject = dict[str, Any]


def on_files(files: Files, config: MkDocsConfig) -> Files:
    schema = generate_schema(Path(config.config_file_path).parent)
    files.append(File.generated(config, PAGE, content=render(schema)))
    return files


def generate_schema(root: Path) -> JsonObject:
    """The schema `/api/schema/` serves, as JSON, from drf-spectacular in a child process."""
    command = [sys.executable, "manage.py", "spectacular", "--format", "openapi-json"]
    try:
        result = subprocess.run(  # noqa: S603 (our own manage.py, with this interpreter)
            command,
            cwd=root,
            env={**os.environ, **SCHEMA_ENV},
            capture_output=True,
            text=True,
            timeout=SCHEMA_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise PluginError(f"manage.py spectacular took more than {SCHEMA_TIMEOUT_SECONDS} s") from error
    if result.returncode != 0:
        raise PluginError(f"manage.py spectacular failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def render(schema: JsonObject) -> str:
    """The whole page: the operations grouped by tag, then every component schema."""
    lines = [
        "# API reference",
        "",
        "Generated from the OpenAPI schema each time the site is built (`docs/hooks/openapi.py` runs",
        "`manage.py spectacular`): the schema the server publishes at `/api/schema/` and shows with Swagger UI",
        "at `/api/docs/`. [Getting started](../getting-started.md#the-api) says who may call what, and the",
        "Sending pages give the rules behind each field.",
        "",
        text(schema.get("info", {}).get("description", "")),
        "",
    ]
    lines += security_schemes(schema.get("components", {}).get("securitySchemes", {}))
    for tag, operations in by_tag(schema.get("paths", {})).items():
        lines += [f"## {tag}", ""]
        for method, path, operation in operations:
            lines += render_operation(method, path, operation, schema)
    lines += ["## Schemas", ""]
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name} {{#{anchor(name)}}}", ""]
        lines += render_fields(component, schema)
    return "\n".join(lines) + "\n"


def security_schemes(schemes: JsonObject) -> list[str]:
    lines = ["## Authentication", "", "| scheme | how | description |", "|---|---|---|"]
    for name, scheme in schemes.items():
        how = f"`{scheme.get('name', '')}` {scheme.get('in', '')}" if scheme.get("type") == "apiKey" else scheme["type"]
        lines.append(f"| `{name}` | {cell(how)} | {cell(scheme.get('description', ''))} |")
    return [*lines, ""]


def by_tag(paths: JsonObject) -> dict[str, list[tuple[str, str, JsonObject]]]:
    groups: dict[str, list[tuple[str, str, JsonObject]]] = {}
    for path, item in paths.items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                groups.setdefault((operation.get("tags") or ["other"])[0], []).append((method, path, operation))
    return groups


def render_operation(method: str, path: str, operation: JsonObject, schema: JsonObject) -> list[str]:
    lines = [f"### `{method.upper()} {path}` {{#{operation['operationId']}}}", ""]
    for key in ("summary", "description"):
        if operation.get(key):
            lines += [text(operation[key]), ""]
    lines += [f"Authentication: {who_may_call(operation)}.", ""]
    if operation.get("parameters"):
        lines += ["**Parameters**", "", "| name | in | type | required | description |", "|---|---|---|---|---|"]
        for parameter in operation["parameters"]:
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {cell(type_of(parameter.get('schema', {})))} "
                f"| {yes(parameter.get('required'))} | {cell(parameter.get('description', ''))} |"
            )
        lines.append("")
    body = operation.get("requestBody")
    if body:
        media = list(body.get("content", {}))
        body_schema = body["content"][media[0]].get("schema", {})
        lines += [
            f"**Request body** ({', '.join(f'`{m}`' for m in media)}{', required' if body.get('required') else ''}):"
            f" {type_of(body_schema)}",
            "",
            *render_fields(resolve(body_schema, schema), schema),
        ]
    lines += ["**Responses**", "", "| status | description | body |", "|---|---|---|"]
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        answer = type_of(next(iter(content.values())).get("schema", {})) if content else "empty"
        lines.append(f"| `{status}` | {cell(response.get('description', ''))} | {cell(answer)} |")
    return [*lines, ""]


def render_fields(component: JsonObject, schema: JsonObject) -> list[str]:
    """A component's description, then its fields as a table (or its values, for an enum)."""
    lines = [text(component["description"]), ""] if component.get("description") else []
    properties = component.get("properties")
    if not properties:
        return [*lines, f"Type: {type_of(component)}", ""]
    required = set(component.get("required", []))
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for name, field in properties.items():
        notes = [field.get("description", "")] + (["Read-only."] if field.get("readOnly") else [])
        lines.append(
            f"| `{name}` | {cell(type_of(field))} | {yes(name in required)} | {cell(' '.join(n for n in notes if n))} |"
        )
    return [*lines, ""]


def type_of(field: JsonObject) -> str:
    """A field's type in words, with links to the component schemas it names."""
    if "$ref" in field:
        name = field["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{anchor(name)})"
    for combinator, joiner in (("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")):
        if combinator in field:
            kinds = unique(type_of(alternative) for alternative in field[combinator])
            described = joiner.join(kinds)
            break
    else:
        described = base_type(field)
    if "enum" in field:
        values = (json.dumps(value) if value in ("", None) else value for value in field["enum"])
        described += ": " + ", ".join(f"`{value}`" for value in values)
    extra = [template.format(field[key]) for key, template in LIMITS if key in field]
    if field.get("nullable"):
        extra.append("nullable")
    if "default" in field:
        extra.append(f"default `{json.dumps(field['default'])}`")
    return ", ".join([described, *extra])


def base_type(field: JsonObject) -> str:
    kind = field.get("type", "any")
    if kind == "array":
        return f"array of {grouped(type_of(field.get('items', {})))}"
    values = field.get("additionalProperties")
    if kind == "object" and isinstance(values, dict) and values:
        return f"object of {grouped(type_of(values))}"
    return f"{kind} ({field['format']})" if "format" in field else kind


def grouped(described: str) -> str:
    """An element type with its own limits, in parentheses, so the limits after it are the container's."""
    return f"({described})" if ", " in described else described


def who_may_call(operation: JsonObject) -> str:
    schemes = unique(f"`{name}`" for requirement in operation.get("security", []) for name in requirement)
    anonymous = any(not requirement for requirement in operation.get("security", [])) or not operation.get("security")
    return " or ".join([*schemes, *(["none"] if anonymous else [])])


def resolve(field: JsonObject, schema: JsonObject) -> JsonObject:
    if "$ref" not in field:
        return field
    name = field["$ref"].rsplit("/", 1)[-1]
    return schema["components"]["schemas"][name]


def anchor(name: str) -> str:
    return "schema-" + name.lower()


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def yes(flag: object) -> str:
    return "yes" if flag else ""


def text(value: str) -> str:
    """Schema text as Markdown: `<` and `>` outside code spans are text (`<token>`), not HTML."""
    parts = re.split(r"(`[^`]*`)", value)
    return "".join(part if part.startswith("`") else part.replace("<", "&lt;").replace(">", "&gt;") for part in parts)


def cell(value: str) -> str:
    """Text for one table cell: one line, and a `|` outside code spans does not end the cell."""
    parts = re.split(r"(`[^`]*`)", text(value).replace("\n", " "))
    return "".join(part if part.startswith("`") else part.replace("|", "\\|") for part in parts)
