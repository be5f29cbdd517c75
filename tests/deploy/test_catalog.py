"""The analysts' side in the synthesized template: the Glue tables are the DDL of sql/ddl/
(parsed with sqlglot, an independent reader), the Athena workgroup enforces its results
location, encryption and scan limit, the named queries are sql/queries/, and the lake bucket
moves old ticks to cheaper storage and logs access."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from core.settings import Settings
from lake.catalog import load_catalog
from tests.deploy.conftest import Synth
from tests.deploy.test_stack import actions_on, arn, ref, statements

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = Settings.model_construct()
GIB = 1024**3


def parsed_ddl(name: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(columns, table properties) of a committed sql/ddl file, as sqlglot reads it."""
    create = sqlglot.parse_one((ROOT / "sql/ddl" / name).read_text(), read="athena")
    assert isinstance(create, exp.Create)
    schema = create.this
    columns = [
        (c.name, c.args["kind"].sql(dialect="hive").lower().replace(", ", ","))
        for c in schema.expressions
        if isinstance(c, exp.ColumnDef)
    ]
    # TBLPROPERTIES (the other properties - STORED AS, LOCATION - have no dotted key).
    properties = {
        p.name: p.text("value")
        for p in create.args["properties"].expressions
        if type(p) is exp.Property and "." in p.name
    }
    return columns, properties


def glue_tables(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]
        for t in synth.of_type("AWS::Glue::Table").values()
    }


def render(value: Any, bucket_id: str) -> str:
    """A string with ``Fn::Join`` of the lake bucket's ``Ref``, as the DDL's default bucket."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(DEFAULTS.bucket if p == ref(bucket_id) else p for p in parts)


def test_glue_tables_are_the_ddl(synth: Synth) -> None:
    bucket_id, _ = synth.one("AWS::S3::Bucket", "Lake")
    tables = glue_tables(synth)
    assert set(tables) == {"ticks", "dead_letters"}
    for name, file in (("ticks", "02_ticks.sql"), ("dead_letters", "03_dead_letters.sql")):
        columns, properties = parsed_ddl(file)
        table = tables[name]
        assert table["DatabaseName"] == DEFAULTS.athena_database
        descriptor = table["TableInput"]["StorageDescriptor"]
        glue_columns = [(c["Name"], c["Type"]) for c in descriptor["Columns"]]
        assert glue_columns == columns
        assert table["TableInput"]["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
        glue_properties = {
            k: render(v, bucket_id)
            for k, v in table["TableInput"]["Parameters"].items()
            if k != "EXTERNAL"
        }
        assert glue_properties == properties
        assert properties["projection.enabled"] == "true"
        prefix = DEFAULTS.ticks_prefix if name == "ticks" else DEFAULTS.dead_letter_prefix
        assert render(descriptor["Location"], bucket_id) == f"s3://{DEFAULTS.bucket}/{prefix}/"
        assert descriptor["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
        assert table["TableInput"]["TableType"] == "EXTERNAL_TABLE"


def test_a_few_column_types_by_hand(synth: Synth) -> None:
    columns = dict(
        (c["Name"], c["Type"])
        for c in glue_tables(synth)["ticks"]["TableInput"]["StorageDescriptor"]["Columns"]
    )
    # docs/design.md, "Contracts": prices exact decimals, times UTC timestamps, anomaly a flag.
    assert columns["price"] == "decimal(38,12)"
    assert columns["ts"] == "timestamp"
    assert columns["anomaly"] == "boolean"
    assert columns["symbol"] == "string"


def test_workgroup_enforces_results_encryption_and_scan_limit(
    synth: Synth, synth_custom: Synth
) -> None:
    bucket_id, _ = synth.one("AWS::S3::Bucket", "Lake")
    (workgroup,) = synth.of_type("AWS::Athena::WorkGroup").values()
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == 10 * GIB
    assert config["PublishCloudWatchMetricsEnabled"] is True
    results = config["ResultConfiguration"]
    assert results["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    assert render(results["OutputLocation"], bucket_id) == f"s3://{DEFAULTS.bucket}/athena-results/"
    (custom,) = synth_custom.of_type("AWS::Athena::WorkGroup").values()
    assert custom["Properties"]["WorkGroupConfiguration"]["BytesScannedCutoffPerQuery"] == 2 * GIB


def test_named_queries_are_sql_queries(synth: Synth) -> None:
    (workgroup_id, _) = synth.one("AWS::Athena::WorkGroup", "CatalogWorkgroup")
    saved = {
        q["Properties"]["Name"]: q["Properties"]
        for q in synth.of_type("AWS::Athena::NamedQuery").values()
    }
    catalog = load_catalog()
    assert set(saved) == set(catalog)
    for name, query in catalog.items():
        assert saved[name]["QueryString"] == query.sql
        assert saved[name]["Database"] == DEFAULTS.athena_database
        assert saved[name]["WorkGroup"] == ref(workgroup_id)


def test_outputs_point_stockpipe_query_at_the_workgroup(synth: Synth) -> None:
    described = {o["Description"]: o["Value"] for o in synth.outputs.values()}
    (workgroup_id, _) = synth.one("AWS::Athena::WorkGroup", "CatalogWorkgroup")
    assert described["STOCKPIPE_ATHENA_WORKGROUP"] == ref(workgroup_id)
    assert described["STOCKPIPE_ATHENA_DATABASE"] == DEFAULTS.athena_database


def test_analyst_role_reads_the_tables_and_writes_only_results(synth: Synth) -> None:
    role_id, role = synth.one("AWS::IAM::Role", "CatalogAnalystRole")
    principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert "AWS" in principal  # this account's principals, as they are granted it
    bucket = arn(synth.one("AWS::S3::Bucket", "Lake")[0])
    for prefix in (DEFAULTS.ticks_prefix, DEFAULTS.dead_letter_prefix):
        objects = {"Fn::Join": ["", [bucket, f"/{prefix}/*"]]}
        assert actions_on(synth, role_id, objects) == {"s3:GetObject"}
    results = {"Fn::Join": ["", [bucket, "/athena-results/*"]]}
    assert actions_on(synth, role_id, results) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
    }
    granted = {a for s in statements(synth, role_id) for a in _actions(s)}
    assert not {a for a in granted if a.startswith(("dynamodb:", "kinesis:", "sns:"))}
    assert not {a for a in granted if a.startswith("s3:Delete")}


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_lake_lifecycle_moves_old_ticks_and_expires_results(
    synth: Synth, synth_custom: Synth
) -> None:
    for which, (ia, glacier) in ((synth, (30, 180)), (synth_custom, (60, 365))):
        _, bucket = which.one("AWS::S3::Bucket", "Lake")
        rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
        ticks = rules["ticks-to-cheaper-storage"]
        assert ticks["Prefix"] == f"{DEFAULTS.ticks_prefix}/"
        assert ticks["Transitions"] == [
            {"StorageClass": "STANDARD_IA", "TransitionInDays": ia},
            {"StorageClass": "GLACIER_IR", "TransitionInDays": glacier},
        ]
        assert rules["expire-athena-results"]["ExpirationInDays"] == 7
        assert rules["expire-athena-results"]["Prefix"] == "athena-results/"


def test_lake_access_is_logged_to_a_private_bucket(synth: Synth) -> None:
    logs_id, logs = synth.one("AWS::S3::Bucket", "AccessLogs")
    _, lake = synth.one("AWS::S3::Bucket", "Lake")
    assert lake["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": ref(logs_id),
        "LogFilePrefix": "lake/",
    }
    props = logs["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == ref(logs_id)
    ]
    (statements_,) = policies
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements_
    )
    assert json.dumps(statements_).count("logging.s3.amazonaws.com") >= 1
