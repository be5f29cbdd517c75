"""The analysts' side of the lake: the Glue database and tables (columns and partition
projection from lake.ddl, the same source as sql/ddl/), an Athena workgroup that
enforces its result location, encryption and a bytes-scanned limit, and the named queries of
sql/queries/ saved in it."""

from __future__ import annotations

from typing import Final

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from core.settings import Settings
from lake import ddl
from lake.catalog import load_catalog

ATHENA_RESULTS_PREFIX: Final = "athena-results"
ATHENA_RESULTS_EXPIRATION: Final = Duration.days(7)
PARQUET_INPUT: Final = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT: Final = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE: Final = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
GIB: Final = 1024**3


class LakeCatalog(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        settings: Settings,
        scan_limit_gb: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.database_name = settings.athena_database
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="stockpipe: enriched ticks and dead letters (Parquet on S3)",
            ),
        )
        # table name -> the lake prefix it reads
        self.prefixes = {
            ddl.TICKS.name: settings.ticks_prefix,
            ddl.DEAD_LETTERS.name: settings.dead_letter_prefix,
        }
        self.tables = {
            spec.name: self._table(
                spec, ddl.table_location(bucket.bucket_name, self.prefixes[spec.name])
            )
            for spec in (ddl.TICKS, ddl.DEAD_LETTERS)
        }
        self.workgroup_name = f"{Aws.STACK_NAME}-analysts"
        self.results_location = f"s3://{bucket.bucket_name}/{ATHENA_RESULTS_PREFIX}/"
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=self.workgroup_name,
            description="stockpipe lake queries: results encrypted and kept 7 days",
            recursive_delete_option=True,
            state="ENABLED",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                # Clients cannot override the location, the encryption or the limit.
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=scan_limit_gb * GIB,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="AUTO"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.results_location,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                    expected_bucket_owner=Aws.ACCOUNT_ID,
                ),
            ),
        )
        for query in load_catalog().values():
            named = athena.CfnNamedQuery(
                self,
                f"Query{''.join(part.title() for part in query.name.split('_'))}",
                name=query.name,
                description=query.answers[:1024],
                database=self.database_name,
                query_string=query.sql,
                work_group=self.workgroup.ref,
            )
            named.node.add_dependency(self.database)
        # A role for people who query the lake: anyone in the account allowed to assume it
        # (an IAM Identity Center permission set, a group policy) gets exactly this.
        self.analyst_role = iam.Role(
            self,
            "AnalystRole",
            assumed_by=iam.AccountRootPrincipal(),
            description="stockpipe: run Athena queries over the lake in its workgroup",
            max_session_duration=Duration.hours(4),
        )
        self.grant_query(self.analyst_role, bucket)

    def _table(self, spec: ddl.TableSpec, location: str) -> glue.CfnTable:
        table = glue.CfnTable(
            self,
            f"Table{spec.name.title().replace('_', '')}",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=spec.name,
                description=spec.comment,
                table_type="EXTERNAL_TABLE",
                parameters={"EXTERNAL": "TRUE", **ddl.table_properties(location)},
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=ddl.PARTITION_COLUMN, type="string")
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=PARQUET_SERDE),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name, type=kind)
                        for name, kind in ddl.columns(spec)
                    ],
                ),
            ),
        )
        table.node.add_dependency(self.database)
        return table

    def grant_query(self, grantee: iam.IGrantable, bucket: s3.IBucket) -> None:
        """What an analyst needs to run the named queries in this workgroup: read the lake's
        tables and the catalog, write (and read back) results under the results prefix.
        Written out rather than ``bucket.grant_read`` (s3:GetObject* and s3:List* on every
        object of the bucket): the lake's prefixes and the results are all an analyst reads."""
        stack = Stack.of(self)
        workgroup_arn = stack.format_arn(
            service="athena", resource="workgroup", resource_name=self.workgroup_name
        )
        principal = grantee.grant_principal
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                    "athena:GetWorkGroup",
                    "athena:ListNamedQueries",
                    "athena:GetNamedQuery",
                    "athena:BatchGetNamedQuery",
                ],
                resources=[workgroup_arn],
            )
        )
        catalog = [
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=self.database_name),
            *(
                stack.format_arn(
                    service="glue", resource="table", resource_name=f"{self.database_name}/{name}"
                )
                for name in self.tables
            ),
        ]
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartitions",
                ],
                resources=catalog,
            )
        )
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:GetBucketLocation"], resources=[bucket.bucket_arn]
            )
        )
        readable = [*self.prefixes.values(), ATHENA_RESULTS_PREFIX]
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{prefix}/*") for prefix in readable],
            )
        )
        # Athena writes a query's results with the caller's credentials.
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(f"{ATHENA_RESULTS_PREFIX}/*")],
            )
        )
