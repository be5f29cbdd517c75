"""Where the lake is and how to open it: a pyarrow filesystem and a root path.

On AWS and against the local endpoint that is S3 through pyarrow's own S3 client (DuckDB's
S3 extension is downloaded at run time, so it is unavailable offline); ``lake_root`` in the
settings points it at a local directory instead (tests, offline work). The same code then
reads both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from core.contracts.schema import DEAD_LETTER_SCHEMA, ROW_SCHEMA
from core.settings import Settings

PARTITION_SCHEMA: Final = pa.schema([pa.field("dt", pa.string())])
# Files named like this are skipped by Athena (and by us): in-progress or hidden objects.
_IGNORED_PREFIXES: Final = [".", "_"]


@dataclass(frozen=True)
class Lake:
    filesystem: pafs.FileSystem
    root: str  # "bucket" on S3, an absolute directory locally; no trailing slash
    ticks_prefix: str = "ticks"
    dead_letter_prefix: str = "dead-letter"

    def table_dir(self, prefix: str) -> str:
        return f"{self.root}/{prefix.strip('/')}"

    def day_dir(self, prefix: str, day: str) -> str:
        return f"{self.table_dir(prefix)}/dt={day}"

    def dataset(self, prefix: str, schema: pa.Schema) -> ds.Dataset:
        """The table as a pyarrow dataset: the files' schema plus the ``dt`` partition (from
        the key; the ``shard=`` level is ignored). Listing happens here, once per query."""
        full = pa.schema([*schema, *PARTITION_SCHEMA])
        base = self.table_dir(prefix)
        if self.filesystem.get_file_info(base).type == pafs.FileType.NotFound:
            return ds.dataset(full.empty_table())
        return ds.dataset(
            base,
            schema=full,
            format="parquet",
            filesystem=self.filesystem,
            partitioning=ds.partitioning(PARTITION_SCHEMA, flavor="hive"),
            ignore_prefixes=_IGNORED_PREFIXES,
        )

    def ticks(self) -> ds.Dataset:
        return self.dataset(self.ticks_prefix, ROW_SCHEMA)

    def dead_letters(self) -> ds.Dataset:
        return self.dataset(self.dead_letter_prefix, DEAD_LETTER_SCHEMA)


def s3_filesystem(settings: Settings) -> pafs.S3FileSystem:
    endpoint = settings.endpoint_url
    secret = settings.aws_secret_access_key
    options: dict[str, object] = {"region": settings.region}
    if endpoint:
        scheme, _, rest = endpoint.partition("://")
        options |= {"endpoint_override": rest.rstrip("/"), "scheme": scheme or "https"}
    if settings.aws_access_key_id and secret is not None:
        options |= {
            "access_key": settings.aws_access_key_id,
            "secret_key": secret.get_secret_value(),
        }
    return pafs.S3FileSystem(**options)


def lake_from_settings(settings: Settings) -> Lake:
    if settings.lake_root:
        return Lake(
            pafs.LocalFileSystem(),
            str(Path(settings.lake_root).resolve()),
            settings.ticks_prefix,
            settings.dead_letter_prefix,
        )
    return Lake(
        s3_filesystem(settings), settings.bucket, settings.ticks_prefix, settings.dead_letter_prefix
    )
