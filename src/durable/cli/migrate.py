"""`durable migrate`: bring a table made by an older version of durable to the current
layout (idempotent: run it again to finish a migration cut short)."""

from __future__ import annotations

import argparse
import json
import sys

from durable.cli.transport import CliError


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate the table named by `--table` or the DURABLE_* environment (AWS or moto)."""
    from durable.aws import endpoint_url, region_name
    from durable.settings import Settings
    from durable.storage.migration import MigrationError, migrate_table

    settings = Settings()
    table = args.table or settings.table_name
    try:
        report = migrate_table(
            table,
            region_name(settings),
            endpoint_url(settings, "dynamodb"),
            shards=args.shards,
            progress=lambda line: print(line, file=sys.stderr),
        )
    except MigrationError as exc:
        raise CliError(str(exc), exit_code=1) from None
    print(
        json.dumps(
            {
                "table": table,
                "index_shards": report.shards,
                "created_indexes": report.created_indexes,
                "config_written": report.config_written,
                "runs_backfilled": report.runs_backfilled,
                "runs_current": report.runs_current,
                "deleted_indexes": report.deleted_indexes,
            },
            indent=2,
        )
    )
    return 0


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `migrate` (it talks to DynamoDB directly, not through the API)."""
    migrate = verbs.add_parser(
        "migrate",
        help="bring a table made by an older version of durable to the current layout",
        description=(
            "Creates the current indexes, writes the table's config item, gives every run "
            "its index keys, then deletes the old indexes. Idempotent: run it again to "
            "finish a migration cut short. Uses DURABLE_TABLE_NAME, DURABLE_ENDPOINT_URL "
            "and the usual AWS environment."
        ),
    )
    migrate.add_argument("--table", help="the table (default: $DURABLE_TABLE_NAME)")
    migrate.add_argument(
        "--shards",
        type=_positive_int,
        default=None,
        help="index shards, if the table has no config item yet (default: 64)",
    )
    migrate.set_defaults(handler=cmd_migrate)
