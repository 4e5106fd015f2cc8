"""Checks a request against Stripe's OpenAPI description (the subset in
stripe_spec_subset.json): the path and method must exist, every parameter
must be known, required ones present, and values of the right type, enum
and length. Form bodies use Stripe's bracket encoding
(``line_items[0][price_data][currency]=usd``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

SPEC = json.loads((Path(__file__).parent / "stripe_spec_subset.json").read_text())

# Parameters the current `stripe` library may send that the 2023-08-16
# description does not list. Each needs a reason; none is accepted silently.
ALLOWED_EXTRA_PARAMS: dict[str, str] = {}

_BRACKETS = re.compile(r"\[([^\]]*)\]")


@dataclass(frozen=True)
class Violation:
    status: int
    code: str
    message: str
    param: str | None = None


def match_route(method: str, path: str) -> tuple[str, dict[str, str], dict] | Violation:
    for template, operations in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{([^}]+)\}", r"(?P<\1>[^/]+)", template) + "$"
        found = re.match(pattern, path)
        if found:
            operation = operations.get(method.lower())
            if operation is None:
                return Violation(
                    405, "method_not_allowed", f"{method} is not allowed on {template}"
                )
            return template, found.groupdict(), operation
    return Violation(
        404, "unrecognized_request_url", f"Unrecognized request URL ({method}: {path})"
    )


def decode_form(body: str) -> dict:
    """``a[b][0]=x&a[c]=y`` → {"a": {"b": ["x"], "c": "y"}}. Numeric keys make lists."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head = key.split("[", 1)[0]
        parts = [head, *_BRACKETS.findall(key[len(head) :])]
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":  # a[]=x
                part = str(len(node)) if isinstance(node, dict) else part
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        converted = {k: _lists(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def validate_value(value, schema: dict, where: str) -> list[Violation]:
    if "anyOf" in schema:
        attempts = [validate_value(value, option, where) for option in schema["anyOf"]]
        if any(not errors for errors in attempts):
            return []
        return min(attempts, key=len)
    kind = schema.get("type")
    if kind == "object":
        if value == "" and schema.get("enum") == [""]:
            return []
        if not isinstance(value, dict):
            return [Violation(400, "parameter_invalid_type", f"Invalid object: {where}", where)]
        errors: list[Violation] = []
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            path = f"{where}[{key}]" if where else key
            if key in properties:
                errors += validate_value(item, properties[key], path)
            elif isinstance(extra, dict):
                errors += validate_value(item, extra, path)
            elif path not in ALLOWED_EXTRA_PARAMS:
                errors.append(
                    Violation(400, "parameter_unknown", f"Received unknown parameter: {path}", path)
                )
        for key in schema.get("required", []):
            if key not in value:
                path = f"{where}[{key}]" if where else key
                errors.append(
                    Violation(400, "parameter_missing", f"Missing required param: {path}.", path)
                )
        return errors
    if kind == "array":
        if isinstance(value, dict) and not value:
            value = []
        if not isinstance(value, list):
            return [Violation(400, "parameter_invalid_type", f"Invalid array: {where}", where)]
        errors = []
        for index, item in enumerate(value):
            errors += validate_value(item, schema.get("items", {}), f"{where}[{index}]")
        return errors
    if not isinstance(value, str):
        return [Violation(400, "parameter_invalid_type", f"Invalid value for {where}", where)]
    if "enum" in schema and value not in schema["enum"]:
        return [
            Violation(
                400,
                "parameter_invalid_string",
                f"Invalid {where}: must be one of {', '.join(map(str, schema['enum']))}",
                where,
            )
        ]
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return [Violation(400, "parameter_invalid_integer", f"Invalid integer: {value}", where)]
    if kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
        return [Violation(400, "parameter_invalid_type", f"Invalid number: {value}", where)]
    if kind == "boolean" and value not in {"true", "false"}:
        return [Violation(400, "parameter_invalid_type", f"Invalid boolean: {value}", where)]
    if kind == "string" and "maxLength" in schema and len(value) > schema["maxLength"]:
        return [Violation(400, "parameter_invalid_string", f"{where} is too long", where)]
    return []


def validate_request(operation: dict, query: str, body: str) -> tuple[dict, list[Violation]]:
    """Returns the decoded parameters and every violation found."""
    params = decode_form(query)
    errors: list[Violation] = []
    query_params = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    for name, value in params.items():
        if name not in query_params:
            errors.append(
                Violation(400, "parameter_unknown", f"Received unknown parameter: {name}", name)
            )
        else:
            errors += validate_value(value, query_params[name].get("schema", {}), name)
    for name, p in query_params.items():
        if p.get("required") and name not in params:
            errors.append(
                Violation(400, "parameter_missing", f"Missing required param: {name}.", name)
            )
    schema = operation.get("requestBody")
    form = decode_form(body)
    if form and schema is None:
        errors.append(Violation(400, "parameter_unknown", "This endpoint takes no body", None))
    elif schema is not None:
        errors += validate_value(form, schema, "")
    params.update(form)
    return params, errors
