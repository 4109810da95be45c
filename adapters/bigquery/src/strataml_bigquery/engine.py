"""One BigQuery client per stack, shared by the feature store and the training source.

The cost guard: with ``max_bytes_billed`` set, every query that reads user data is **dry-run**
first (:meth:`BigQueryEngine.dry_run`: it validates the SQL, yields the result schema and
BigQuery's estimate of the bytes processed) and refused with
:class:`~strataml.errors.LimitExceeded` when the estimate exceeds the limit; every job also
carries ``maximum_bytes_billed``, so BigQuery enforces the same limit itself. A query composed
of parts that were dry-run is guarded by the sum of their estimates instead (an upper bound);
statements on strataml's own small catalog tables (:meth:`BigQueryEngine.catalog`) only carry
``maximum_bytes_billed``. Multi-statement scripts (the transactions of ``load``) are never
dry-run -- their data-moving statement is, alone (bqemulator even *executes* a script sent as
a dry run). Without a limit there is nothing to guard: queries run directly, and dry runs are
made only to learn a result's schema.

Results are read as Arrow through the Storage Read API when it is installed and reachable
(``read_api``), otherwise through REST pages; either way batches are cut to the caller's
``batch_size`` and cast to the caller's schema. Tables are loaded by load jobs from Parquet files
spooled to local disk (bounded memory), always with an explicit schema.
"""

from __future__ import annotations

import datetime as dt
import importlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from strataml.errors import ConfigError, LimitExceeded, StrataError, Unavailable
from strataml_bigquery.bqtypes import BQColumn, conform, from_schema_field, schema_fields
from strataml_bigquery.config import BigQueryConfig
from strataml_bigquery.errors import driver_errors, translate, translated
from strataml_bigquery.sql import quote

__all__ = ["MAX_QUERY_CHARS", "BigQueryEngine", "Query", "credentials_for"]

#: BigQuery's limit on the length of a GoogleSQL query (1,024K characters).
MAX_QUERY_CHARS = 1024 * 1024

_SCOPES = ("https://www.googleapis.com/auth/bigquery",)


def credentials_for(config: BigQueryConfig) -> Any:
    """The credentials ``config`` names (``None``: Application Default Credentials).

    Errors: :class:`ConfigError` for a key that does not load (the message never includes it).
    """
    import json

    import google.auth
    from google.auth.credentials import AnonymousCredentials

    try:
        if config.credentials_json is not None:
            return _credentials_from_info(json.loads(config.credentials_json.get_secret_value()))
        if config.credentials_file is not None:
            info = json.loads(Path(config.credentials_file).expanduser().read_text())
            return _credentials_from_info(info)
    except (ValueError, OSError, TypeError, google.auth.exceptions.GoogleAuthError) as exc:
        which = "credentials_json" if config.credentials_json is not None else "credentials_file"
        raise ConfigError(
            f"bigquery {which} does not hold usable credentials ({type(exc).__name__})"
        ) from None
    if config.api_endpoint is not None:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    return None


def _credentials_from_info(info: Any) -> Any:
    """Service-account or authorized-user credentials from a key file's JSON content."""
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        return service_account.Credentials.from_service_account_info(info, scopes=_SCOPES)  # type: ignore[no-untyped-call]
    if kind == "authorized_user":
        return user_credentials.Credentials.from_authorized_user_info(info, scopes=_SCOPES)  # type: ignore[no-untyped-call]
    raise ValueError(f"unsupported credentials type {kind!r}")


class Query:
    """A statement and its parameters (``google.cloud.bigquery`` query parameter objects)."""

    __slots__ = ("params", "sql")

    def __init__(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.sql = sql
        self.params = list(params)


class BigQueryEngine:
    """The client, the dataset, and the guarded query/load primitives the stores use.

    Thread-safe: the underlying ``google.cloud.bigquery.Client`` is.
    """

    def __init__(self, config: BigQueryConfig) -> None:
        from google.api_core.client_options import ClientOptions
        from google.cloud import bigquery

        self.config = config
        self.project = config.project
        self.dataset = config.dataset
        self._credentials = credentials_for(config)
        options = ClientOptions(api_endpoint=config.api_endpoint) if config.api_endpoint else None
        with translated("connecting to BigQuery"):
            self.client = bigquery.Client(
                project=config.project,
                credentials=self._credentials,
                location=config.location,
                client_options=options,
            )
        self._ready = False
        self._lock = threading.Lock()
        self._read_client: Any = None
        self._read_client_made = False
        self._closed = False

    # ---------------------------------------------------------------------------- basics
    def close(self) -> None:
        """Close the HTTP session (and the Storage Read API channel). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.client.close()  # type: ignore[no-untyped-call]
        transport = getattr(self._read_client, "_transport", None)
        if transport is not None:
            transport.close()

    def check_open(self) -> None:
        if self._closed:
            raise Unavailable("the BigQuery engine is closed")

    def table_id(self, name: str) -> str:
        """``project.dataset.name`` (for client calls)."""
        return f"{self.project}.{self.dataset}.{name}"

    def ref(self, name: str) -> str:
        """The table's fully qualified, quoted name (for SQL)."""
        return quote(self.table_id(name))

    def ensure_dataset(self) -> None:
        """Create the dataset once (when ``create_dataset``); later calls return at once."""
        self.check_open()
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            from google.cloud import bigquery

            with translated(f"creating dataset {self.project}.{self.dataset}"):
                if self.config.create_dataset:
                    ds = bigquery.Dataset(f"{self.project}.{self.dataset}")
                    if self.config.location:
                        ds.location = self.config.location
                    self.client.create_dataset(
                        ds, exists_ok=True, timeout=self.config.request_timeout_s
                    )
                else:
                    self.client.get_dataset(
                        f"{self.project}.{self.dataset}", timeout=self.config.request_timeout_s
                    )
            self._ready = True

    # ---------------------------------------------------------------------------- queries
    def job_config(self, params: Sequence[Any] = (), **kwargs: Any) -> Any:
        from google.cloud import bigquery

        return bigquery.QueryJobConfig(
            default_dataset=f"{self.project}.{self.dataset}",
            use_legacy_sql=False,
            query_parameters=list(params),
            maximum_bytes_billed=self.config.max_bytes_billed,
            **kwargs,
        )

    def _check_length(self, sql: str, what: str) -> None:
        if len(sql) > MAX_QUERY_CHARS:
            raise LimitExceeded(
                f"{what}: the statement has {len(sql)} characters; BigQuery accepts at most "
                f"{MAX_QUERY_CHARS} (load large inputs as tables instead of inlining them)"
            )

    def dry_run(
        self, query: Query, what: str, *, user_sql: bool = False
    ) -> tuple[list[BQColumn], int]:
        """Validate ``query`` and apply the cost guard; return the result's columns and
        BigQuery's estimate of the bytes it processes.

        Errors: :class:`SchemaError` (SQL BigQuery rejects), :class:`NotFound`,
        :class:`LimitExceeded` (estimated bytes over ``max_bytes_billed``, or a query too long).
        """
        self.check_open()
        self._check_length(query.sql, what)
        with translated(what, query=user_sql):
            job = self.client.query(
                query.sql,
                job_config=self.job_config(query.params, dry_run=True, use_query_cache=False),
                timeout=self.config.request_timeout_s,
            )
        estimate = int(job.total_bytes_processed or 0)
        self.guard(estimate, what)
        return [from_schema_field(f) for f in (job.schema or ())], estimate

    def guard(self, estimate: int | None, what: str) -> None:
        """The cost guard: :class:`LimitExceeded` when ``estimate`` exceeds the limit."""
        limit = self.config.max_bytes_billed
        if limit is not None and estimate is not None and estimate > limit:
            raise LimitExceeded(
                f"{what}: BigQuery estimates {estimate} bytes processed, over max_bytes_billed="
                f"{limit}; select fewer columns or rows, or raise max_bytes_billed"
            )

    def query(
        self,
        query: Query,
        what: str,
        *,
        user_sql: bool = False,
        page_size: int | None = None,
        dry_run: bool = True,
        estimate: int | None = None,
    ) -> Any:
        """Run ``query`` and return its ``RowIterator``.

        With ``max_bytes_billed`` set, a dry run comes first (the cost guard) -- or, with
        ``dry_run=False``, the guard is applied to a known ``estimate`` (a query built from
        parts that were dry-run: the sum of their estimates bounds its cost). Without a limit
        there is nothing to guard and the query runs directly."""
        self.check_open()
        if dry_run and self.config.max_bytes_billed is not None:
            self.dry_run(query, what, user_sql=user_sql)
        else:
            self.guard(estimate, what)
        return self.run_job(query, what, user_sql=user_sql, page_size=page_size)[1]

    def run_job(
        self, query: Query, what: str, *, user_sql: bool = False, page_size: int | None = None
    ) -> tuple[Any, Any]:
        """Run ``query`` as is (no cost guard); return the finished job and its ``RowIterator``.
        Errors: :class:`LimitExceeded` for a statement longer than BigQuery accepts."""
        self.check_open()
        self._check_length(query.sql, what)
        with translated(what, query=user_sql):
            job = self.client.query(
                query.sql,
                job_config=self.job_config(query.params),
                timeout=self.config.request_timeout_s,
            )
            return job, job.result(timeout=self.config.query_timeout_s, page_size=page_size)

    def catalog(self, query: Query, what: str) -> Any:
        """A statement on strataml's own small catalog tables: no dry run (the job still
        carries ``maximum_bytes_billed``). Returns the ``RowIterator``."""
        return self.query(query, what, dry_run=False)

    def script(self, sql: str, what: str) -> None:
        """Run a multi-statement script (no dry run: see the module docstring). Scripts built
        here carry no parameters (bqemulator does not bind parameters inside scripts); their
        values are literals from :func:`strataml_bigquery.sql.string_literal`."""
        self.query(Query(sql), what, dry_run=False)

    def rows(self, query: Query, what: str) -> list[Any]:
        """All rows of a small catalog query as ``Row`` objects (no dry run)."""
        return list(self.catalog(query, what))

    # ---------------------------------------------------------------------------- results
    def read_client(self) -> Any:
        """The Storage Read API client, or ``None`` to read REST pages (see ``read_api``)."""
        if self._read_client_made:
            return self._read_client
        with self._lock:
            if not self._read_client_made:
                self._read_client = self._make_read_client()
                self._read_client_made = True
        return self._read_client

    def _make_read_client(self) -> Any:
        mode = self.config.read_api
        if mode == "rest":
            return None
        endpoint = self.config.storage_api_endpoint
        if mode == "auto" and self.config.api_endpoint is not None and endpoint is None:
            return None  # a custom REST endpoint (an emulator) without a Storage endpoint
        try:
            from google.cloud import bigquery_storage
        except ImportError:
            if mode == "storage":
                raise ConfigError(
                    "read_api = 'storage' needs google-cloud-bigquery-storage: "
                    "pip install 'strataml-bigquery[storage]'"
                ) from None
            return None
        if endpoint is not None and endpoint.startswith("grpc://"):
            grpc: Any = importlib.import_module("grpc")  # typed or not depending on its version
            from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
                BigQueryReadGrpcTransport,
            )

            channel = grpc.insecure_channel(endpoint.removeprefix("grpc://"))
            transport = BigQueryReadGrpcTransport(channel=channel)
            return bigquery_storage.BigQueryReadClient(transport=transport)  # type: ignore[no-untyped-call]
        options = {"api_endpoint": endpoint} if endpoint else None
        return bigquery_storage.BigQueryReadClient(  # type: ignore[no-untyped-call]
            credentials=self._credentials, client_options=options
        )

    def batches(
        self, rows: Any, schema: pa.Schema, batch_size: int, what: str
    ) -> Iterator[pa.RecordBatch]:
        """``rows`` (a ``RowIterator``) as record batches of at most ``batch_size`` rows, each
        cast to ``schema`` (by position)."""
        try:
            for raw in rows.to_arrow_iterable(bqstorage_client=self.read_client()):
                if raw.num_rows == 0:
                    continue
                batch = conform(raw, schema)
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)
        except StrataError:
            raise
        except driver_errors() as exc:
            raise translate(exc, what) from exc

    def arrow(self, rows: Any, schema: pa.Schema, what: str) -> pa.Table:
        """Every row of ``rows`` as one table of ``schema``."""
        batches = list(self.batches(rows, schema, 1 << 30, what))
        return pa.Table.from_batches(batches, schema=schema)

    # ----------------------------------------------------------------------------- tables
    def get_table(self, name: str) -> Any | None:
        """The table's metadata, or ``None`` if it does not exist."""
        from google.api_core.exceptions import NotFound as GNotFound

        self.check_open()
        try:
            with translated(f"reading table {name}"):
                return self.client.get_table(
                    self.table_id(name), timeout=self.config.request_timeout_s
                )
        except StrataError as exc:
            if isinstance(exc.__cause__, GNotFound):
                return None
            raise

    def columns(self, name: str) -> list[BQColumn] | None:
        """The table's columns, or ``None`` if it does not exist."""
        table = self.get_table(name)
        return None if table is None else [from_schema_field(f) for f in table.schema]

    def create_table(
        self,
        name: str,
        columns: Sequence[BQColumn],
        *,
        staging: bool = False,
        exists_ok: bool = False,
    ) -> None:
        """Create an empty table; ``staging`` tables expire after ``staging_expiration_s``."""
        from google.cloud import bigquery

        table = bigquery.Table(self.table_id(name), schema=schema_fields(columns))
        if staging:
            table.expires = dt.datetime.now(dt.UTC) + dt.timedelta(
                seconds=self.config.staging_expiration_s
            )
        with translated(f"creating table {name}"):
            self.client.create_table(
                table, exists_ok=exists_ok, timeout=self.config.request_timeout_s
            )

    def delete_table(self, name: str) -> None:
        """Delete a table (no error if it does not exist)."""
        with translated(f"deleting table {name}"):
            self.client.delete_table(
                self.table_id(name), not_found_ok=True, timeout=self.config.request_timeout_s
            )

    def drop_quietly(self, name: str) -> None:
        """Best-effort cleanup of a staging table (its expiry covers a failure here)."""
        try:
            self.delete_table(name)
        except StrataError:
            pass

    def list_tables(self) -> list[str]:
        """Names of every table in the dataset."""
        self.check_open()
        with translated("listing tables"):
            return [
                str(t.table_id)
                for t in self.client.list_tables(
                    f"{self.project}.{self.dataset}", timeout=self.config.request_timeout_s
                )
            ]

    def load_parquet(
        self,
        path: Path,
        name: str,
        columns: Sequence[BQColumn],
        what: str,
        *,
        truncate: bool = False,
    ) -> int:
        """Load a Parquet file into table ``name`` (created with ``columns`` if missing);
        return the rows loaded. A load job is atomic: all rows or none."""
        from google.cloud import bigquery
        from google.cloud.bigquery.format_options import ParquetOptions

        options = ParquetOptions()  # type: ignore[no-untyped-call]
        options.enable_list_inference = True
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            schema=schema_fields(columns),
            write_disposition="WRITE_TRUNCATE" if truncate else "WRITE_APPEND",
            create_disposition="CREATE_IF_NEEDED",
            parquet_options=options,
        )
        self.check_open()
        with translated(what), path.open("rb") as fh:
            job = self.client.load_table_from_file(
                fh,
                self.table_id(name),
                job_config=config,
                timeout=self.config.request_timeout_s,
            )
            job.result(timeout=self.config.query_timeout_s)
        return int(job.output_rows or 0)
