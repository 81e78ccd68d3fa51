"""The SAM template: linted by `sam validate --lint`, built by `sam build`, deployed to moto.

moto's CloudFormation creates the table, queues, bucket, functions, roles, the event source
mapping and the schedule rule, but ignores `AWS::ApiGatewayV2::Api`,
`AWS::ApiGatewayV2::Stage` and `AWS::S3::BucketPolicy`, and drops the bucket's public access
block and lifecycle rules: those are checked on the translated template instead (routes,
authorizers, the TLS-only bucket policy, the bucket's properties).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from durable.settings import Settings
from tests.sam import workload
from tests.sam.aws_calls import (
    PSEUDO_PARAMETERS,
    Call,
    CallRecorder,
    allows,
    matches,
    resource_patterns,
    statement_actions,
)
from tests.sam.conftest import ROOT, SAM_ENV

FUNCTION_MODULES = {
    "IamApiFunction": "handlers.api",
    "JwtApiFunction": "handlers.api",
    "WorkerFunction": "handlers.worker",
    "SweeperFunction": "handlers.sweeper",
}
IGNORED_BY_MOTO = {"AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage", "AWS::S3::BucketPolicy"}
# moto's CloudFormation cannot create these (it loses the FunctionName of a version or an
# alias; it has no alarms): they are taken out before deploying, the event source mapping
# pointed at the function itself, an alarm's ARN in the dashboard made up, and they are
# checked on the translated template instead (tests/sam/test_monitoring.py: the alarms).
UNSUPPORTED_BY_MOTO = {"AWS::Lambda::Version", "AWS::Lambda::Alias", "AWS::CloudWatch::Alarm"}


def _for_moto(template: dict[str, Any]) -> dict[str, Any]:
    resources = template["Resources"]
    dropped = {name for name, r in resources.items() if r["Type"] in UNSUPPORTED_BY_MOTO}
    aliases = {
        name: resources[name]["Properties"]["FunctionName"]
        for name in dropped
        if resources[name]["Type"] == "AWS::Lambda::Alias"
    }
    text = json.dumps(
        {**template, "Resources": {name: r for name, r in resources.items() if name not in dropped}}
    )
    for alias, function in aliases.items():
        text = text.replace(json.dumps({"Ref": alias}), json.dumps(function))
    for name in dropped:  # an alarm's ARN in the dashboard's body (a Fn::Sub)
        text = text.replace(f"${{{name}.Arn}}", f"arn:aws:cloudwatch:::alarm:{name}")
    return dict(json.loads(text))


def test_sam_validate_lint_reports_nothing(sam_bin: Path) -> None:
    result = subprocess.run(
        [str(sam_bin), "validate", "--lint", "--template", str(ROOT / "template.yaml")],
        cwd=ROOT,
        env=SAM_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout


def test_runtime_requirements_match_the_project_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [
        line.strip()
        for line in (ROOT / "src" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert requirements == project["project"]["dependencies"]


def _import_in_isolation(code_dir: Path, module: str) -> subprocess.CompletedProcess[str]:
    """Import `module` with only `code_dir` and the standard library on the path."""
    script = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(code_dir)!r})\n"
        f"handler = importlib.import_module({module!r}).handler\n"
        "assert callable(handler)\n"
        "import tasks\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "DURABLE_TABLE_NAME": "durable-runs",
        "DURABLE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/durable-wakeups",
        "DURABLE_BUCKET_NAME": "durable-values",
        "POWERTOOLS_SERVICE_NAME": "durable",
    }
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_built_function_imports_with_only_its_own_dependencies(sam_build_dir: Path) -> None:
    built = sorted(path.name for path in sam_build_dir.iterdir() if path.is_dir())
    assert built == sorted(FUNCTION_MODULES)
    for function, module in FUNCTION_MODULES.items():
        result = _import_in_isolation(sam_build_dir / function, module)
        assert result.returncode == 0, f"{function}: {result.stderr}"


def test_a_missing_runtime_dependency_is_caught(sam_build_dir: Path, tmp_path: Path) -> None:
    # given: the worker's package without the X-Ray SDK (Powertools' tracer extra)
    stripped = tmp_path / "WorkerFunction"
    shutil.copytree(
        sam_build_dir / "WorkerFunction",
        stripped,
        ignore=shutil.ignore_patterns("aws_xray_sdk"),
    )
    result = _import_in_isolation(stripped, "handlers.worker")
    assert result.returncode != 0
    assert "aws_xray_sdk" in result.stderr


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


def _deploy(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    """Create the stack on moto; returns logical id -> physical id."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="durable-artifacts")
    s3.put_object(Bucket="durable-artifacts", Key="code.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="durable",
        TemplateBody=json.dumps(_for_moto(template)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName="durable")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    resources = cloudformation.list_stack_resources(StackName="durable")
    return {
        summary["LogicalResourceId"]: summary.get("PhysicalResourceId", "")
        for summary in resources["StackResourceSummaries"]
    }


@pytest.fixture
def translated(translated_template: Path) -> dict[str, Any]:
    return dict(json.loads(translated_template.read_text()))


@pytest.fixture
def iam_stack(
    translated: dict[str, Any], aws_credentials: None
) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    with mock_aws():
        yield translated, _deploy(translated, {})


def _expected_table_shape() -> dict[str, Any]:
    """Key schema and indexes of the table the code creates for itself (durable dev)."""
    from durable.resources import ensure_resources
    from durable.settings import Settings

    settings = Settings(table_name="shape-probe", queue_name="shape-probe", bucket_name="probe")
    ensure_resources(settings)
    table = boto3.client("dynamodb").describe_table(TableName="shape-probe")["Table"]
    return _table_shape(table)


def _table_shape(table: dict[str, Any]) -> dict[str, Any]:
    return {
        "keys": table["KeySchema"],
        "indexes": {
            index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
            for index in table.get("GlobalSecondaryIndexes", [])
        },
    }


def test_the_stack_creates_what_the_code_uses(
    iam_stack: tuple[dict[str, Any], dict[str, str]],
) -> None:
    template, physical = iam_stack
    created = set(physical)
    expected = {
        name
        for name, resource in template["Resources"].items()
        if resource.get("Condition") != "UseJwt"
        and resource["Type"] not in IGNORED_BY_MOTO | UNSUPPORTED_BY_MOTO
    }
    assert expected <= created

    # the table: the keys and indexes the code queries, on demand
    table = boto3.client("dynamodb").describe_table(TableName=physical["RunsTable"])["Table"]
    assert _table_shape(table) == _expected_table_shape()
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    # the queue: a dead-letter queue, and a visibility timeout of at least six times the
    # worker's timeout (AWS's advice for an SQS event source mapping); the lease stays the
    # worker's timeout
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=physical["WakeQueue"], AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 5
    assert redrive["deadLetterTargetArn"].endswith(physical["WakeDeadLetterQueue"].split("/")[-1])
    lambdas = boto3.client("lambda")
    worker = lambdas.get_function(FunctionName=physical["WorkerFunction"])["Configuration"]
    assert int(attributes["VisibilityTimeout"]) >= 6 * worker["Timeout"]
    assert str(worker["Environment"]["Variables"]["DURABLE_LEASE_SECONDS"]) == str(
        worker["Timeout"]
    )

    # every function: python3.11, its handler, and the names of the stack's resources
    for function, module in FUNCTION_MODULES.items():
        if function == "JwtApiFunction":
            continue
        config = lambdas.get_function(FunctionName=physical[function])["Configuration"]
        assert config["Runtime"] == "python3.11"
        assert config["Handler"] == f"{module}.handler"
        variables = config["Environment"]["Variables"]
        assert variables["DURABLE_TABLE_NAME"] == physical["RunsTable"]
        assert variables["DURABLE_QUEUE_URL"] == physical["WakeQueue"]
        assert variables["DURABLE_BUCKET_NAME"] == physical["ValuesBucket"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == "durable"

    # the worker listens to the queue and reports partial batch failures
    mappings = lambdas.list_event_source_mappings(FunctionName=physical["WorkerFunction"])
    (mapping,) = mappings["EventSourceMappings"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10

    # the bucket: encrypted, private, large values expire
    s3 = boto3.client("s3")
    bucket = physical["ValuesBucket"]
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # (moto's CloudFormation drops PublicAccessBlockConfiguration: see the translated check)
    public_access = template["Resources"]["ValuesBucket"]["Properties"][
        "PublicAccessBlockConfiguration"
    ]
    assert all(public_access.values()) and len(public_access) == 4
    (rule,) = template["Resources"]["ValuesBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == "values/"
    assert rule["ExpirationInDays"] == {"Ref": "LargeValueRetentionDays"}

    # the sweeper runs on a schedule
    rule_name = physical["SweeperFunctionSweep"]
    assert boto3.client("events").describe_rule(Name=rule_name)["ScheduleExpression"] == (
        "rate(1 minute)"
    )


@pytest.mark.parametrize("worker_timeout", [30, 900])
def test_the_queue_hides_a_message_six_worker_timeouts_whatever_the_timeout(
    translated: dict[str, Any], aws_credentials: None, worker_timeout: int
) -> None:
    with mock_aws():
        physical = _deploy(translated, {"WorkerTimeout": str(worker_timeout)})
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=physical["WakeQueue"], AttributeNames=["VisibilityTimeout"]
        )["Attributes"]
        worker = boto3.client("lambda").get_function(FunctionName=physical["WorkerFunction"])
    assert worker["Configuration"]["Timeout"] == worker_timeout
    variables = worker["Configuration"]["Environment"]["Variables"]
    assert str(variables["DURABLE_LEASE_SECONDS"]) == str(worker_timeout)  # the lease is not
    assert 6 * worker_timeout <= int(attributes["VisibilityTimeout"]) <= 43200  # SQS's most


def test_deleting_the_stack_keeps_the_runs_and_their_large_values(
    translated: dict[str, Any], aws_credentials: None
) -> None:
    # moto honours DeletionPolicy on delete_stack; it does not model replacements, so the
    # UpdateReplacePolicy is read from the translated template
    for name in ("RunsTable", "ValuesBucket", "ValuesBucketPolicy"):
        resource = translated["Resources"][name]
        assert resource["DeletionPolicy"] == "Retain", name
        assert resource["UpdateReplacePolicy"] == "Retain", name
    with mock_aws():
        # given: a stack holding a run and a large value
        physical = _deploy(translated, {})
        dynamodb, s3, sqs = boto3.client("dynamodb"), boto3.client("s3"), boto3.client("sqs")
        dynamodb.put_item(
            TableName=physical["RunsTable"], Item={"pk": {"S": "RUN#r1"}, "sk": {"S": "RUN"}}
        )
        s3.put_object(Bucket=physical["ValuesBucket"], Key="values/r1/v.json", Body=b"{}")
        # when
        cloudformation = boto3.client("cloudformation")
        cloudformation.delete_stack(StackName="durable")
        # then: the table and the bucket stay, with what they hold; the rest is gone
        assert (
            cloudformation.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]
            == []
        )
        items = dynamodb.scan(TableName=physical["RunsTable"])["Items"]
        assert items == [{"pk": {"S": "RUN#r1"}, "sk": {"S": "RUN"}}]
        assert s3.get_object(Bucket=physical["ValuesBucket"], Key="values/r1/v.json")
        assert physical["WakeQueue"] not in sqs.list_queues().get("QueueUrls", [])


def _served_tasks(variables: dict[str, str]) -> dict[str, Any]:
    """The tasks a cold start with a deployed function's environment registers (moto)."""
    script = (
        "import json, sys\n"
        "from moto import mock_aws\n"
        "with mock_aws():\n"
        "    from durable.resources import ensure_resources\n"
        "    from durable.bootstrap import get_runtime\n"
        "    from durable.settings import Settings\n"
        "    ensure_resources(Settings())\n"
        "    runtime = get_runtime()\n"
        "    print(json.dumps({'tasks': runtime.registry.ids(),\n"
        "                      'examples_imported': 'tasks' in sys.modules}))\n"
    )
    durable_variables = {k: str(v) for k, v in variables.items() if k.startswith("DURABLE_")}
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "src"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        **durable_variables,
        "DURABLE_QUEUE_URL": "",  # the stack's queue lives in another moto: use the name
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_stack_serves_no_example_task_unless_asked(
    translated: dict[str, Any], aws_credentials: None
) -> None:
    with mock_aws():
        default = _deploy(translated, {})
        lambdas = boto3.client("lambda")
        by_default = {
            function: lambdas.get_function(FunctionName=default[function])["Configuration"][
                "Environment"
            ]["Variables"]
            for function in ("IamApiFunction", "WorkerFunction", "SweeperFunction")
        }
    with mock_aws():
        examples = _deploy(translated, {"TaskModules": "tasks"})
        asked = boto3.client("lambda").get_function(FunctionName=examples["WorkerFunction"])
    for function, variables in by_default.items():
        assert variables["DURABLE_TASK_MODULES"] == "", function
    # an empty list starts fine and registers nothing; `tasks` deploys the examples
    assert _served_tasks(by_default["WorkerFunction"]) == {
        "tasks": [],
        "examples_imported": False,
    }
    served = _served_tasks(asked["Configuration"]["Environment"]["Variables"])
    assert "process-order" in served["tasks"]
    assert served["examples_imported"]


def _policy_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    properties = template["Resources"][role]["Properties"]
    statements = [
        statement
        for policy in properties.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    for arn in properties.get("ManagedPolicyArns", []):
        if isinstance(arn, dict):  # a reference to one of our own managed policies
            policy = template["Resources"][arn["Ref"]]["Properties"]["PolicyDocument"]
            statements.extend(policy["Statement"])
    return statements


# Each role of the translated template, and which function's calls it must allow.
ROLES = {
    "IamApiFunctionRole": "api",
    "JwtApiFunctionRole": "api",
    "WorkerFunctionRole": "worker",
    "SweeperFunctionRole": "sweeper",
}
# Actions a role is granted though the workload never calls them, each with its reason.
# Keep this short: anything here is a permission no test proves necessary.
ALLOWANCE: dict[str, dict[str, str]] = {"api": {}, "worker": {}, "sweeper": {}}


@pytest.fixture(scope="module")
def recorded() -> CallRecorder:
    """The AWS calls of each function, recorded while `workload.run_workload` runs on moto."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("DURABLE_", "AWS_ENDPOINT_URL")) or name == "AWS_PROFILE":
                patch.delenv(name)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": PSEUDO_PARAMETERS["AWS::Region"],
        }.items():
            patch.setenv(name, value)
        settings = Settings(
            table_name="durable-runs",
            queue_name="durable-wakeups",
            bucket_name="durable-values",
            region=PSEUDO_PARAMETERS["AWS::Region"],
            endpoint_url=None,
            code_version="v1",
            retention_days=1,
        )
        with mock_aws():
            queue_url, names = workload.resources(settings)
            recorder = CallRecorder(names)
            with recorder.installed():
                workload.run_workload(workload.Stack(recorder, settings, queue_url))
    return recorder


def test_the_recorder_sees_each_function_call_aws(recorded: CallRecorder) -> None:
    assert set(recorded.calls) == set(ROLES.values())
    # issue 7: an event put into a run purged meanwhile is taken back by the API function
    assert Call("dynamodb:DeleteItem", "RunsTable") in recorded.calls["api"]
    assert "lambda:InvokeFunction" in recorded.actions("worker")


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_function_may_make_every_call_its_code_makes(
    translated: dict[str, Any], recorded: CallRecorder, role: str
) -> None:
    statements = _policy_statements(translated, role)
    denied = sorted(call for call in recorded.calls[ROLES[role]] if not allows(statements, call))
    assert not denied, f"{role} may not: " + ", ".join(map(str, denied))


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_function_may_do_only_what_it_calls_on_only_its_resources(
    translated: dict[str, Any], recorded: CallRecorder, role: str
) -> None:
    statements = _policy_statements(translated, role)
    granted = {action for statement in statements for action in statement_actions(statement)}
    needed = recorded.actions(ROLES[role]) | set(ALLOWANCE[ROLES[role]])
    assert granted <= needed, f"{role} never calls {sorted(granted - needed)}"
    calls = recorded.calls[ROLES[role]]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] != "*"
        assert "*" not in json.dumps(statement["Action"])
        for pattern in resource_patterns(statement["Resource"]):  # each one used
            only_this = {**statement, "Resource": pattern}
            assert any(matches(only_this, call) for call in calls), (statement.get("Sid"), pattern)


def test_the_api_is_iam_protected_by_default_and_jwt_on_demand(
    translated: dict[str, Any], aws_credentials: None
) -> None:
    resources = translated["Resources"]
    iam_body = json.dumps(resources["IamHttpApi"]["Properties"]["Body"])
    assert '"AWS_IAM": []' in iam_body
    assert "/{proxy+}" in iam_body
    jwt_schemes = resources["JwtHttpApi"]["Properties"]["Body"]["components"]["securitySchemes"]
    assert jwt_schemes["JwtAuthorizer"]["x-amazon-apigateway-authorizer"]["type"] == "jwt"

    with mock_aws():
        physical = _deploy(
            translated,
            {
                "AuthMode": "JWT",
                "JwtIssuer": "https://issuer.example.com",
                "JwtAudience": "durable",
            },
        )
    assert "JwtApiFunction" in physical
    assert "IamApiFunction" not in physical


def test_the_bucket_refuses_plain_http(translated: dict[str, Any]) -> None:
    (statement,) = translated["Resources"]["ValuesBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_each_code_version_of_the_worker_stays_published(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    (version,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Version"]
    (alias_name, alias), *_ = [
        (name, r) for name, r in resources.items() if r["Type"] == "AWS::Lambda::Alias"
    ]
    assert version["DeletionPolicy"] == "Retain"  # a new code version leaves the old one
    assert alias["Properties"]["Name"] == "v1"  # the CodeVersion parameter's default
    mapping = resources["WorkerFunctionWakeUps"]["Properties"]
    assert mapping["FunctionName"] == {"Ref": alias_name}  # the queue feeds the alias
