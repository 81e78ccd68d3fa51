"""JSON Schemas of payloads and results, and example payloads (`durable.schemas`).

Every example is checked the way a trigger checks a payload: validated against the type.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

import tasks
from durable.schemas import declared_examples, example_of, payload_example, schema_of
from durable.task import TaskDefinition


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    city: str = "Paris"


class Person(BaseModel):
    name: str = Field(min_length=3, max_length=4)
    age: int = Field(gt=17, le=130)
    score: float = Field(gt=0, lt=1)
    step: int = Field(ge=7, multiple_of=5)
    colour: Colour
    kind: Literal["a", "b"]
    born: date
    seen_at: datetime
    token: UUID
    wait: timedelta
    home: Address
    work: Address | None
    tags: list[str] = Field(min_length=2)
    pair: tuple[int, str]
    labels: dict[str, int] = Field(min_length=1)
    nickname: str | None = None


class Declared(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"order_id": "o-42", "qty": 2}]})

    order_id: str
    qty: int = 1


class FieldExamples(BaseModel):
    order_id: str = Field(examples=["o-7"])
    qty: int


class WrongExample(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"order_id": 1}]})

    order_id: str


class Tree(BaseModel):
    value: int
    children: list[Tree]


class Patterned(BaseModel):
    code: str = Field(pattern=r"^[A-Z]{3}-\d{4}$")


class Exploding(BaseModel):
    value: str

    @field_validator("value")
    @classmethod
    def _explode(cls, value: str) -> str:
        raise RuntimeError("a validator that breaks")


FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER


def accepts(annotation: Any, value: Any) -> bool:
    """Whether pydantic accepts `value`, and it fits the JSON Schema (formats included)."""
    Draft202012Validator(schema_of(annotation), format_checker=FORMAT_CHECKER).validate(value)
    TypeAdapter(annotation).validate_python(value)
    return True


# -- schemas -----------------------------------------------------------------------------


@pytest.mark.parametrize("annotation", [Any, object])
def test_an_unchecked_payload_is_any_json(annotation: Any) -> None:
    assert schema_of(annotation) == {}


def test_plain_annotations_have_their_schema() -> None:
    assert schema_of(None) == {"type": "null"}
    assert schema_of(int) == {"type": "integer"}
    assert schema_of(list[str]) == {"type": "array", "items": {"type": "string"}}
    assert schema_of(str | None) == {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_a_model_schema_is_self_contained() -> None:
    schema = schema_of(Person)

    assert schema["title"] == "Person"
    assert set(schema["required"]) >= {"name", "age", "home", "tags"}
    assert "nickname" not in schema["required"]
    assert schema["properties"]["home"] == {"$ref": "#/$defs/Address"}
    assert set(schema["$defs"]) == {"Address", "Colour"}
    assert schema["$defs"]["Address"]["properties"]["city"]["default"] == "Paris"


def test_results_are_described_as_they_are_written() -> None:
    # A Decimal is read from a number or a string, and written as a string.
    assert schema_of(Decimal, "validation")["anyOf"][0]["type"] == "number"
    assert schema_of(Decimal, "serialization")["type"] == "string"


def test_a_type_without_a_json_schema_says_so_instead_of_failing() -> None:
    schema = schema_of(Callable[[], int])  # pydantic validates it, cannot describe it

    assert set(schema) == {"description"}
    assert "no JSON Schema" in schema["description"]


# -- generated examples -----------------------------------------------------------------


def test_an_example_fills_the_required_fields_within_their_constraints() -> None:
    example = payload_example(Person)

    assert accepts(Person, example)
    assert example["name"] == "stri"  # 3 to 4 characters
    assert example["age"] == 18
    assert 0 < example["score"] < 1
    assert example["step"] == 10
    assert example["colour"] == "red"
    assert example["kind"] == "a"
    assert example["born"] == "2024-01-01"
    assert example["seen_at"].startswith("2024-01-01T00:00:00")
    assert UUID(example["token"])
    assert example["home"] == {"street": "string", "city": "Paris"}  # defaults filled in
    assert example["work"] == {"street": "string", "city": "Paris"}  # `X | None` shows an X
    assert example["tags"] == ["string", "string"]
    assert example["pair"] == [0, "string"]
    assert example["labels"] == {"key1": 0}
    assert example["nickname"] is None  # optional: left to its default


def test_examples_of_plain_schemas() -> None:
    assert example_of({}) == {}
    assert example_of({"type": "boolean"}) is False
    assert example_of({"type": ["null", "integer"], "minimum": 3}) == 3
    assert example_of({"const": 7}) == 7
    assert example_of({"type": "number", "exclusiveMaximum": -2}) == -3.0
    assert example_of({"type": "integer", "exclusiveMinimum": 4.5}) == 5
    assert example_of({"type": "string", "format": "email"}) == "user@example.com"
    assert example_of({"type": "array", "items": {"type": "integer"}}) == []
    assert example_of({"allOf": [{"$ref": "#/$defs/A"}], "$defs": {"A": {"const": "x"}}}) == "x"


def test_a_recursive_model_gets_a_finite_example() -> None:
    example = payload_example(Tree)

    assert example == {"value": 0, "children": []}
    assert accepts(Tree, example)


@pytest.mark.parametrize("annotation", [None, int, str, list[int], dict[str, float], bool])
def test_plain_payloads_get_an_example_of_their_type(annotation: Any) -> None:
    assert accepts(annotation, payload_example(annotation))


def test_an_unchecked_payload_gets_an_object() -> None:
    assert payload_example(Any) == {}


# -- declared examples ------------------------------------------------------------------


def test_a_declared_example_comes_first_as_written() -> None:
    assert declared_examples(schema_of(Declared)) == [{"order_id": "o-42", "qty": 2}]
    assert payload_example(Declared) == {"order_id": "o-42", "qty": 2}


def test_a_field_example_is_used_for_that_field() -> None:
    assert payload_example(FieldExamples) == {"order_id": "o-7", "qty": 0}


def test_a_declared_example_that_does_not_validate_is_passed_over() -> None:
    assert payload_example(WrongExample) == {"order_id": "string"}


def test_a_declared_example_inside_an_optional_wrapper_is_found() -> None:
    annotation = Annotated[Declared | None, Field(description="maybe")]

    assert accepts(annotation, payload_example(annotation))


# -- never an example the task refuses --------------------------------------------------


def test_no_example_rather_than_one_the_type_refuses() -> None:
    assert payload_example(Patterned) is None
    assert payload_example(Exploding) is None


def test_a_declared_example_satisfies_what_the_generator_cannot() -> None:
    class Code(BaseModel):
        model_config = ConfigDict(json_schema_extra={"examples": [{"code": "ABC-1234"}]})

        code: str = Field(pattern=r"^[A-Z]{3}-\d{4}$")

    assert payload_example(Code) == {"code": "ABC-1234"}


# Not `tests.e2e.e2e_scheduled`: a cron task in the default registry would fire in other
# tests' environments (its payload is None anyway).
MODULES = [f"tasks.{name}" for name in tasks.__all__] + ["tests.e2e.e2e_tasks"]


@pytest.mark.parametrize("module", MODULES)
def test_every_example_task_has_an_example_it_accepts(module: str) -> None:
    definitions = [
        value
        for value in vars(importlib.import_module(module)).values()
        if isinstance(value, TaskDefinition)
    ]

    assert definitions, module
    for definition in definitions:
        example = payload_example(definition.payload_annotation)
        definition.validate_payload(example)  # as a trigger validates: no error
        # and as a client (the dashboard's form) checks it against the published schema
        schema = schema_of(definition.payload_annotation)
        Draft202012Validator(schema, format_checker=FORMAT_CHECKER).validate(example)
        annotation = definition.payload_annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert isinstance(example, dict), definition.id
