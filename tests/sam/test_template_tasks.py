"""The API lists the tasks the workers run: in `template.yaml`, every function imports the
same task modules from the same code (`GET /tasks` answers from the API function's own
registry, filled by `DURABLE_TASK_MODULES`; see `durable.api.tasks`).

Read with cfn-lint's loader (intrinsic functions as `{"Ref": ...}`), no SAM CLI needed.
"""

from __future__ import annotations

from typing import Any

from cfnlint.decode import cfn_yaml

from tests.sam.conftest import ROOT


def _template() -> dict[str, Any]:
    template: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
    return template


def test_every_function_imports_the_same_task_modules_from_the_same_code() -> None:
    template = _template()
    shared = template["Globals"]["Function"]
    functions = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    handlers = {properties["Handler"] for properties in functions.values()}

    assert shared["Environment"]["Variables"]["DURABLE_TASK_MODULES"] == {"Ref": "TaskModules"}
    assert {"handlers.api.handler", "handlers.worker.handler"} <= handlers
    for name, properties in functions.items():
        own = properties.get("Environment", {}).get("Variables", {})
        assert "DURABLE_TASK_MODULES" not in own, name  # none overrides the shared list
        assert "CodeUri" not in properties, name  # all are built from the same src/
    assert shared["CodeUri"] == "src/"
