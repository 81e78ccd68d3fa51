"""Translate the SAM template to plain CloudFormation offline, as `sam deploy` would.

Run with the SAM CLI's own interpreter (`.venv-sam/bin/python`), which has
aws-sam-translator: `python translate_template.py template.yaml out.json`. The code location
is replaced by an S3 URI (what `sam package` does) and managed policies resolve to their
well-known ARNs, so no AWS call is made.
"""

from __future__ import annotations

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

MANAGED_POLICIES = (
    "AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess",
    "AWSLambdaSQSQueueExecutionRole",
)
CODE_URI = "s3://durable-artifacts/code.zip"


class OfflinePolicyLoader:
    """Answers the translator's managed-policy lookups without calling IAM."""

    def load(self) -> dict[str, str]:
        return {name: f"arn:aws:iam::aws:policy/service-role/{name}" for name in MANAGED_POLICIES}


def main(source: str, target: str) -> None:
    with open(source, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    template["Globals"]["Function"]["CodeUri"] = CODE_URI
    translated = transform(template, {}, OfflinePolicyLoader())  # type: ignore[arg-type]
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(translated, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
