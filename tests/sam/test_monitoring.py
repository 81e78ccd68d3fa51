"""The template's monitoring: alarms and a dashboard on the metrics the runtime really emits.

moto's CloudFormation has no alarms: they are checked on the translated template (each
alarm's namespace, metric and dimensions against the EMF lines the handlers print while
the monitoring scenarios run, `tests/monitoring_kit.py`); the dashboard is deployed to
moto and its body read back.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.monitoring_kit import EmfLine, run_scenarios
from tests.sam.test_template import _deploy

# What each alarm watches: (namespace, metric) -> the resource its dimension names.
ALARMS = {
    "DeadLetterAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    "FailedRunsAlarm": ("durable", "runs_failed"),
    "AttemptsExhaustedAlarm": ("durable", "attempts_exhausted"),
    "NonDeterminismAlarm": ("durable", "non_determinism_errors"),
    "WorkerErrorsAlarm": ("AWS/Lambda", "Errors"),
    "WorkerThrottlesAlarm": ("AWS/Lambda", "Throttles"),
    "RunsRecoveredAlarm": ("durable", "runs_swept"),
}
SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\} MetricName=\"(?P<name>\w+)\"'")


@pytest.fixture(scope="module")
def emitted() -> list[EmfLine]:
    """Every EMF line the worker and sweeper handlers print over the scenarios."""
    worker, _ = run_scenarios()
    return worker.emitted


@pytest.fixture
def translated(translated_template: Any) -> dict[str, Any]:
    return dict(json.loads(translated_template.read_text()))


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def _emits(
    lines: list[EmfLine],
    namespace: str,
    name: str,
    dimensions: dict[str, str],
    names: tuple[str, ...] | None = None,
) -> bool:
    """Whether some line carries `name` under exactly these dimensions (their `names`,
    the keys of `dimensions` by default), with these values."""
    wanted = sorted(names if names is not None else dimensions)
    return any(
        line.namespace == namespace
        and name in line.metrics
        and wanted in [sorted(names) for names in line.dimension_sets]
        and all(line.dimensions.get(k) == v for k, v in dimensions.items())
        for line in lines
    )


def test_the_template_has_each_alarm_the_issue_asks_for(translated: dict[str, Any]) -> None:
    alarms = _alarms(translated)
    assert {name: (a["Namespace"], a["MetricName"]) for name, a in alarms.items()} == ALARMS
    for name, alarm in alarms.items():
        # the first occurrence in five minutes
        assert (alarm["Period"], alarm["EvaluationPeriods"]) == (300, 1), name
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert alarm["TreatMissingData"] == "notBreaching", name
        # notifies the optional action, nothing when the parameter is empty
        assert alarm["AlarmActions"] == {
            "Fn::If": ["HasAlarmAction", [{"Ref": "AlarmActionArn"}], {"Ref": "AWS::NoValue"}]
        }
    assert translated["Parameters"]["AlarmActionArn"]["Default"] == ""
    assert translated["Conditions"]["HasAlarmAction"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmActionArn"}, ""]}]
    }


def test_the_aws_alarms_watch_the_stacks_own_queue_and_worker(translated: dict[str, Any]) -> None:
    alarms = _alarms(translated)
    assert alarms["DeadLetterAlarm"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["WakeDeadLetterQueue", "QueueName"]}}
    ]
    for name in ("WorkerErrorsAlarm", "WorkerThrottlesAlarm"):
        assert alarms[name]["Dimensions"] == [
            {"Name": "FunctionName", "Value": {"Ref": "WorkerFunction"}}
        ]


def test_each_alarm_on_a_durable_metric_names_one_the_runtime_emits(
    translated: dict[str, Any], emitted: list[EmfLine]
) -> None:
    for name, alarm in _alarms(translated).items():
        if alarm["Namespace"] != "durable":
            continue
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions == {"service": "durable"}, name
        assert _emits(emitted, "durable", alarm["MetricName"], dimensions), name


def _dashboard_body(template: dict[str, Any]) -> dict[str, Any]:
    body = template["Resources"]["MonitoringDashboard"]["Properties"]["DashboardBody"]
    text = re.sub(r"\$\{[^}]+\}", "placeholder", body["Fn::Sub"])
    return dict(json.loads(text))


def _dashboard_metrics(body: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(namespace, metric, dimension names) of every series the dashboard draws."""
    series = []
    for widget in body["widgets"]:
        for entry in widget["properties"].get("metrics", []):
            if isinstance(entry[0], dict):
                match = SEARCH.search(entry[0]["expression"])
                assert match, entry
                namespace, *names = match["schema"].split(",")
                series.append((namespace, match["name"], tuple(names)))
            else:
                namespace, metric, *rest = [part for part in entry if isinstance(part, str)]
                series.append((namespace, metric, tuple(rest[0::2])))
    return series


def test_the_dashboard_draws_only_metrics_the_runtime_emits(
    translated: dict[str, Any], emitted: list[EmfLine]
) -> None:
    series = _dashboard_metrics(_dashboard_body(translated))
    durable = [(name, dims) for namespace, name, dims in series if namespace == "durable"]
    assert durable, "the dashboard draws the runtime's metrics"
    for name, dims in durable:
        # the SEARCH widgets name the dimensions only: any task's series
        values = {"service": "durable"} if dims == ("service",) else {}
        assert _emits(emitted, "durable", name, values, dims), (name, dims)
    # every alarm's metric is on the dashboard, and each per-task figure has its widget
    drawn = {name for _, name, _ in series}
    assert {metric for _, metric in ALARMS.values()} <= drawn
    per_task = {name for name, dims in durable if dims == ("service", "task_id")}
    assert per_task >= {"runs_started", "runs_completed", "runs_failed", "step_retries"}


def test_the_dashboard_shows_every_alarm(translated: dict[str, Any]) -> None:
    body = translated["Resources"]["MonitoringDashboard"]["Properties"]["DashboardBody"]
    shown = set(re.findall(r"\$\{(\w+)\.Arn\}", body["Fn::Sub"]))
    assert shown == set(ALARMS)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "DURABLE_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def test_the_stack_creates_the_dashboard_with_the_stacks_names(
    translated: dict[str, Any], aws_credentials: None
) -> None:
    with mock_aws():
        physical = _deploy(translated, {"AlarmActionArn": "arn:aws:sns:us-east-1:1:ops"})
        cloudwatch = boto3.client("cloudwatch")
        body = json.loads(
            cloudwatch.get_dashboard(DashboardName=physical["MonitoringDashboard"])["DashboardBody"]
        )
        queue_name = physical["WakeDeadLetterQueue"].rsplit("/", 1)[-1]
    assert physical["MonitoringDashboard"] == "durable-durable"  # the stack's name + durable
    text = json.dumps(body)
    assert physical["WorkerFunction"] in text
    assert queue_name in text
    assert "us-east-1" in text
