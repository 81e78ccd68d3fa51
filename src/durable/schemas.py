"""JSON Schemas of task payloads and results, and an example payload that fits.

    schema_of(annotation, mode)     the annotation's JSON Schema (pydantic's `TypeAdapter`);
                                    `{}` ("any JSON") for a missing annotation, `Any`, `object`
    example_of(schema)              a JSON value built from a schema: a declared example
                                    (`examples` / `example`) where the schema has one, else
                                    the required properties, each by its type
    payload_example(annotation)     the first candidate that validates against the annotation:
                                    each example the schema declares at its root (as written),
                                    then one built with the fields' declared examples, then
                                    one built from the types alone; None if none fits

Each schema is self-contained: the models it refers to are under its own `$defs`, and its
`$ref`s point there (`#/$defs/Name`), so a schema can be handed out alone.

The generator is deliberately small: it reads `$ref`, `allOf`, `anyOf`, `oneOf`, `const`,
`enum`, `type` (and a list of them), `properties` with `required`, `items` and
`prefixItems` with `minItems`, `minProperties`, the numeric bounds and `multipleOf`,
`minLength` / `maxLength`, and the usual string formats (date-time, date, time, duration,
email, uri, uuid, ip addresses). What it cannot satisfy (a `pattern`, a validator in
code) is caught by validating the candidate: `payload_example` never answers with an
example that the task would refuse.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal, TypeAlias

from pydantic import TypeAdapter

from durable.serialization import JsonData, is_unchecked_annotation, type_adapter

JsonSchema: TypeAlias = dict[str, Any]
SchemaMode: TypeAlias = Literal["validation", "serialization"]

# Nesting deeper than this gives null: a recursive model whose every level is required
# would otherwise never end (and validation then refuses the candidate).
MAX_DEPTH = 32

# A string of each format that pydantic reads as that format.
FORMAT_EXAMPLES: dict[str, str] = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "duration": "PT1S",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "hostname": "example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uuid1": "a8098c1a-f86e-11da-bd1a-00112444be1e",
    "uuid3": "9125a8dc-52ee-365b-a5aa-81b0b3681cf6",
    "uuid4": "00000000-0000-4000-8000-000000000000",
    "uuid5": "fdda765f-fc57-5604-a269-52a7df8164ec",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "ipvanyaddress": "192.0.2.1",
    "ipv4network": "192.0.2.0/24",
    "ipv6network": "2001:db8::/32",
    "ipvanynetwork": "192.0.2.0/24",
    "ipv4interface": "192.0.2.1/24",
    "ipv6interface": "2001:db8::1/32",
    "ipvanyinterface": "192.0.2.1/24",
    "path": "example.txt",
    "file-path": "example.txt",
    "directory-path": ".",
    "json-string": "{}",
    "base64url": "",
    "binary": "",
}


def schema_of(annotation: Any, mode: SchemaMode = "validation") -> JsonSchema:
    """The JSON Schema of values of `annotation`: what a payload may be ("validation") or
    what a result is written as ("serialization"). `{}` when anything goes.

    A type that pydantic validates but cannot describe (a plain class with a validator of
    its own, say) gets a schema that only says so, never an error.
    """
    if is_unchecked_annotation(annotation):
        return {}
    try:
        with warnings.catch_warnings():
            # A default that has no JSON form is left out of the schema, with a warning.
            warnings.simplefilter("ignore")
            schema: JsonSchema = type_adapter(annotation).json_schema(mode=mode)
    except Exception as exc:
        return {"description": f"no JSON Schema for this type ({type(exc).__name__})"}
    return schema


def example_of(schema: JsonSchema, *, declared: bool = True) -> JsonData:
    """A JSON value shaped by `schema` (which may hold its models under `$defs`): the
    examples declared in it where there are some (unless `declared` is False), else
    values built from the types."""
    return _Examples(schema.get("$defs", {}), declared).build(schema, 0)


def declared_examples(schema: JsonSchema) -> list[JsonData]:
    """The examples `schema` itself declares (at its root, or in the model it refers to)."""
    node = schema
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        node = schema.get("$defs", {}).get(ref.removeprefix("#/$defs/"), node)
    found: list[JsonData] = []
    examples = node.get("examples")
    if isinstance(examples, list):
        found.extend(examples)
    elif isinstance(examples, dict):  # OpenAPI's named examples: {"name": {"value": ...}}
        found.extend(v["value"] for v in examples.values() if isinstance(v, dict) and "value" in v)
    if "example" in node:
        found.append(node["example"])
    return found


def payload_example(annotation: Any, schema: JsonSchema | None = None) -> JsonData:
    """An example payload that `annotation` accepts, in its JSON form; None if none is found.

    A declared example comes first; then one built from the schema. Each is validated the
    way a trigger's payload is (pydantic, lax), so the example is never one the task refuses.
    """
    schema = schema_of(annotation) if schema is None else schema
    declared = declared_examples(schema)
    if is_unchecked_annotation(annotation):
        return declared[0] if declared else example_of(schema)
    adapter = type_adapter(annotation)
    for candidate in declared:
        if _fits(adapter, candidate):
            return candidate  # as its author wrote it
    # Then one built with the fields' own examples, then one built from the types alone;
    # as the task would store it: the defaults of a model filled in show what may be set.
    for use_declared in (True, False):
        try:
            value = adapter.validate_python(example_of(schema, declared=use_declared))
            return adapter.dump_python(value, mode="json")
        except Exception:  # a ValidationError, or a validator of the user's that broke
            continue
    return None


def _fits(adapter: TypeAdapter[Any], candidate: JsonData) -> bool:
    try:
        adapter.validate_python(candidate)
    except Exception:  # a ValidationError, or a validator of the user's that broke
        return False
    return True


class _Examples:
    """Builds an example of a schema node, reading `$ref`s from the root's `$defs`."""

    def __init__(self, defs: dict[str, JsonSchema], declared: bool) -> None:
        self.defs = defs
        self.declared = declared

    def build(self, node: JsonSchema, depth: int) -> JsonData:
        if depth > MAX_DEPTH or not isinstance(node, dict):
            return None
        declared = declared_examples({**node, "$defs": self.defs}) if self.declared else []
        if declared:
            return declared[0]
        if "const" in node:
            return node["const"]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return node["enum"][0]
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self.build(self.defs.get(ref.rsplit("/", 1)[-1], {}), depth + 1)
        for key in ("anyOf", "oneOf"):
            if isinstance(node.get(key), list) and node[key]:
                return self.build(_prefer_non_null(node[key]), depth + 1)
        if isinstance(node.get("allOf"), list) and node["allOf"]:
            merged = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                merged.update(part if isinstance(part, dict) else {})
            return self.build(merged, depth + 1)
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None and "properties" in node:
            kind = "object"
        if kind == "object":
            return self._object(node, depth)
        if kind == "array":
            return self._array(node, depth)
        if kind == "string":
            return _string(node)
        if kind in ("integer", "number"):
            return _number(node, integer=kind == "integer")
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        return {}  # no type: any JSON value

    def _object(self, node: JsonSchema, depth: int) -> dict[str, JsonData]:
        properties: dict[str, JsonSchema] = node.get("properties", {})
        required = [name for name in node.get("required", []) if isinstance(name, str)]
        value = {name: self.build(properties.get(name, {}), depth + 1) for name in required}
        extra = node.get("additionalProperties")
        wanted = int(node.get("minProperties", 0))
        index = 1
        while len(value) < wanted:
            key = f"key{index}"
            value.setdefault(key, self.build(extra if isinstance(extra, dict) else {}, depth + 1))
            index += 1
        return value

    def _array(self, node: JsonSchema, depth: int) -> list[JsonData]:
        prefix: list[JsonSchema] = node.get("prefixItems", [])
        items = [self.build(part, depth + 1) for part in prefix]
        each = node.get("items")
        wanted = int(node.get("minItems", 0))
        while len(items) < wanted and each is not False:
            items.append(self.build(each if isinstance(each, dict) else {}, depth + 1))
        return items


def _prefer_non_null(options: list[JsonSchema]) -> JsonSchema:
    """The first option that is not null: an example of `X | None` shows an X."""
    for option in options:
        if isinstance(option, dict) and option.get("type") != "null":
            return option
    return options[0]


def _string(node: JsonSchema) -> str:
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in FORMAT_EXAMPLES:
        return FORMAT_EXAMPLES[fmt]
    shortest = int(node.get("minLength", 0))
    longest = int(node.get("maxLength", max(shortest, 6)))
    text = "string"
    if len(text) < shortest:
        text += "x" * (shortest - len(text))
    return text[:longest]


def _number(node: JsonSchema, *, integer: bool) -> int | float:
    """0 moved inside the bounds, then up to a multiple of `multipleOf`. Past an exclusive
    bound: the next integer, or for numbers the middle of the room (1 when unbounded)."""
    low, low_open = _bound(node, "minimum", "exclusiveMinimum", max)
    high, high_open = _bound(node, "maximum", "exclusiveMaximum", min)
    if integer:  # integer bounds are all closed
        if low is not None:
            low, low_open = (math.floor(low) + 1 if low_open else math.ceil(low)), False
        if high is not None:
            high, high_open = (math.ceil(high) - 1 if high_open else math.floor(high)), False
    value: float = 0
    if low is not None and (value < low or (low_open and value == low)):
        value = low if not low_open else (low + high) / 2 if high is not None else low + 1
    elif high is not None and (value > high or (high_open and value == high)):
        value = high if not high_open else (low + high) / 2 if low is not None else high - 1
    multiple = node.get("multipleOf")
    if isinstance(multiple, int | float) and multiple > 0:
        value = math.ceil(value / multiple) * multiple
    return math.ceil(value) if integer else float(value)


def _bound(node: JsonSchema, closed: str, opened: str, tighter: Any) -> tuple[float | None, bool]:
    """The tighter of a closed and an open bound, and whether it is the open one."""
    inclusive, exclusive = node.get(closed), node.get(opened)
    if exclusive is None:
        return inclusive, False
    if inclusive is None or tighter(inclusive, exclusive) == exclusive:
        return exclusive, True
    return inclusive, False
