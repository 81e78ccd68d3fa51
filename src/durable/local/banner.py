"""What `durable dev` prints once it is up: where things are, and commands to try.

The curl examples are made from the registered tasks themselves: each payload is built from
the task's payload type (its JSON schema's required fields, with examples, defaults or a
placeholder), and shown only if the task accepts it.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from durable.errors import InputError
from durable.serialization import JsonData, is_unchecked_annotation, type_adapter
from durable.task import TaskDefinition, TaskRegistry

# How many tasks get a curl example of their own.
MAX_EXAMPLES = 6


def example_payload(definition: TaskDefinition[Any, Any]) -> JsonData:
    """A payload `definition` accepts, or None when none could be made up."""
    if is_unchecked_annotation(definition.payload_annotation):
        candidate: Any = {}
    else:
        try:
            schema = type_adapter(definition.payload_annotation).json_schema()
        except Exception:
            return None
        candidate = _example(schema, schema.get("$defs", {}), depth=0)
    try:
        definition.validate_payload(candidate)
    except (InputError, ValueError, TypeError):
        return None
    return candidate


def _example(schema: dict[str, Any], defs: dict[str, Any], depth: int) -> JsonData:
    if depth > 5:
        return None
    if "$ref" in schema:
        return _example(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs, depth + 1)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [option for option in schema.get(key, []) if option.get("type") != "null"]
        if options:
            return _example(options[0], defs, depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {
            name: _example(properties.get(name, {}), defs, depth + 1)
            for name in schema.get("required", [])
        }
    if kind == "string":
        return "example"
    if kind == "integer":
        if "exclusiveMinimum" in schema:
            return max(1, int(schema["exclusiveMinimum"]) + 1)
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    return None


def render(
    *,
    url: str,
    moto_url: str,
    registry: TaskRegistry,
    tasks: list[str],
    table: str,
    queue: str,
    bucket: str,
    concurrency: int,
    time_limit: float,
    visibility_timeout: int,
    env_json: Path | None = None,
    containers_reach: bool = False,
    state_dir: Path | None = None,
) -> str:
    """The text printed at startup."""
    ids = registry.ids()
    lines = [
        f"durable dev is running at {url}",
        "",
        f"  API + dashboard  {url}/   (OpenAPI: {url}/openapi.json)",
        f"  moto             {moto_url}   table {table}, queue {queue}, bucket {bucket}",
        _state_line(state_dir),
        f"  worker           {concurrency} processes; an invocation is killed after "
        f"{time_limit:g}s, and SQS redelivers a crashed one after {visibility_timeout}s",
        f"  tasks            {', '.join(ids) or '(none registered)'}   from {', '.join(tasks)}",
        *_sam_local_lines(env_json, containers_reach),
        "",
        "Try:",
    ]
    shown = 0
    for definition in registry:
        if shown >= MAX_EXAMPLES:
            break
        payload = example_payload(definition)
        if payload is None:
            continue
        body = shlex.quote(json.dumps({"payload": payload}))
        lines.append(
            f"  curl -s -X POST {url}/tasks/{definition.id}/runs "
            f"-H 'content-type: application/json' -d {body}"
        )
        shown += 1
    lines += [
        f"  curl -s {url}/runs",
        f"  curl -s {url}/runs/RUN_ID",
        f"  curl -s {url}/runs/RUN_ID/history",
        f"  curl -s -X POST {url}/runs/RUN_ID/events/NAME -H 'content-type: application/json'"
        " -d '{\"data\": {}}'",
        f"  curl -s -X POST {url}/runs/RUN_ID/cancel",
    ]
    if ids:
        first = registry.get(ids[0])
        payload = example_payload(first)
        payload_arg = shlex.quote(json.dumps(payload if payload is not None else {}))
        lines.append(f"  durable trigger {first.id} --payload {payload_arg}")
    lines += [
        "  durable runs            durable show RUN_ID --history",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _state_line(state_dir: Path | None) -> str:
    """Where the stack's state lives, and whether it outlives the stack."""
    if state_dir is None:
        return "                   --ephemeral: the state is gone when this server stops"
    return (
        f"  state            {state_dir}   (runs, queue, values: kept across restarts; "
        "--ephemeral keeps nothing)"
    )


def _sam_local_lines(env_json: Path | None, containers_reach: bool) -> list[str]:
    """Where `sam local` finds this stack: the env.json to pass it, and how to run it."""
    if env_json is None:
        return []
    lines = [f"  sam local        --env-vars {env_json}"]
    if containers_reach:
        lines.append(
            "                   with fake credentials: AWS_ACCESS_KEY_ID=testing "
            "AWS_SECRET_ACCESS_KEY=testing sam local invoke ... --skip-pull-image"
        )
    else:
        lines.append(
            "                   containers cannot reach 127.0.0.1: start with --host 172.17.0.1 "
            "(Docker's bridge) or --host 0.0.0.0"
        )
    return lines
