"""Tables, indexes and the collection registry of the pgvector store.

Layout (in the adapter's schema)
--------------------------------
``_strataml_vector_collections``
    The registry: one row per collection with its table, dimension, metric, tenancy, index
    kind, tracked metadata field types and user metadata.
``_strataml_vector_aliases``
    ``alias -> collection`` (a foreign key to the registry: a collection with an alias cannot
    be deleted). A repoint is one ``UPDATE`` of a row.
``_strataml_vector_alias_ok(alias, collection)``
    A ``STABLE`` PL/pgSQL function that returns true when ``alias`` still points at
    ``collection`` and raises SQLSTATE ``SMA01`` otherwise. A read through an alias puts it in
    its ``WHERE`` clause with literal arguments (a one-time filter, evaluated once per
    statement, in the statement's snapshot): the cached alias resolution is verified in the same
    round trip as the read, and a stale one fails instead of reading the old collection.
``_strataml_v_<name>_<generation>``
    One table per collection::

        tenant    text COLLATE "C" NOT NULL DEFAULT ''   -- '' in single-tenant collections
        id        text COLLATE "C" NOT NULL
        embedding vector(dim) NOT NULL
        text      text
        metadata  jsonb NOT NULL DEFAULT '{}'
        tsv       tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(text, ''))) STORED
        PRIMARY KEY (tenant, id)

    with an HNSW index using the metric's operator class and a GIN index on ``tsv``. The
    primary key's B-tree leads with ``tenant``: the planner can answer a search in a small
    tenant exactly from it, and the HNSW scan filters on ``tenant`` for large ones. The random
    generation suffix makes a dropped-and-recreated collection a *different* table, so stale
    caches in other processes fail loudly instead of reading the wrong shape.

Index kinds: ``hnsw`` (dim <= 2000, on ``vector``), ``hnsw_halfvec`` (2000 < dim <= 4000: an
expression index on ``embedding::halfvec(dim)``; full-precision vectors are kept and returned,
and results are re-ranked by the exact distance) and ``exact`` (4000 < dim <= 16000: pgvector
cannot index such vectors with HNSW; searches scan the table exactly).

pgvector objects (types, operators, operator classes) are always schema-qualified with the
schema the extension lives in, so the store works whatever the search path.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Final, Literal

from psycopg import sql

from strataml.filters import FieldType
from strataml.models import Metric

__all__ = [
    "ALIASES",
    "ALIAS_CHECK",
    "ALIAS_MOVED",
    "EXTENSION_LOCK",
    "HALFVEC_MAX_DIM",
    "HNSW_MAX_DIM",
    "REGISTRY",
    "VECTOR_MAX_DIM",
    "CollectionMeta",
    "IndexKind",
    "Ops",
    "alias_function_sql",
    "alias_guard",
    "create_table_sql",
    "hnsw_index_name",
    "hnsw_index_sql",
    "index_kind_for",
    "new_table_name",
    "registry_sql",
    "temporal_fields",
]

REGISTRY: Final = "_strataml_vector_collections"
ALIASES: Final = "_strataml_vector_aliases"
ALIAS_CHECK: Final = "_strataml_vector_alias_ok"
#: SQLSTATE raised by the alias check when the alias moved (a custom class, "SM").
ALIAS_MOVED: Final = "SMA01"
HNSW_MAX_DIM: Final = 2000
HALFVEC_MAX_DIM: Final = 4000
VECTOR_MAX_DIM: Final = 16000
#: ``pg_advisory_xact_lock`` key serialising ``CREATE EXTENSION vector`` across sessions.
EXTENSION_LOCK: Final = 0x5354_5241_5445_5631  # "STRATEV1"

IndexKind = Literal["hnsw", "hnsw_halfvec", "exact"]

#: metric -> (distance operator, vector opclass, halfvec opclass)
_METRIC_OPS: Final[dict[str, tuple[str, str, str]]] = {
    "cosine": ("<=>", "vector_cosine_ops", "halfvec_cosine_ops"),
    "l2": ("<->", "vector_l2_ops", "halfvec_l2_ops"),
    "dot": ("<#>", "vector_ip_ops", "halfvec_ip_ops"),
}


def temporal_fields(fields: dict[str, FieldType]) -> frozenset[str]:
    """The fields whose JSON strings decode to datetimes or dates."""
    return frozenset(k for k, t in fields.items() if t in (FieldType.TIMESTAMP, FieldType.DATE))


def index_kind_for(dim: int) -> IndexKind:
    """The ANN index a collection of ``dim``-dimensional vectors gets (see module docstring)."""
    if dim <= HNSW_MAX_DIM:
        return "hnsw"
    if dim <= HALFVEC_MAX_DIM:
        return "hnsw_halfvec"
    return "exact"


def new_table_name(name: str) -> str:
    """``_strataml_v_<name (first 30 chars)>_<8 hex>``: at most 51 bytes, room for index
    suffixes; the ``_strataml`` prefix keeps it out of the feature store's table listing."""
    return f"_strataml_v_{name[:30]}_{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Ops:
    """The schema-qualified pgvector SQL for one collection (rendered once, reused per query)."""

    distance: str  # e.g. OPERATOR("public".<=>)
    vector_type: str  # e.g. "public".vector
    halfvec_cast: str  # e.g. ::"public".halfvec(3000) ('' when not halfvec-indexed)

    @classmethod
    def build(cls, ext_schema: str, metric: str, dim: int, kind: IndexKind) -> Ops:
        op = _METRIC_OPS[metric][0]
        ext = sql.Identifier(ext_schema).as_string(None)
        halfvec = f"::{ext}.halfvec({int(dim)})" if kind == "hnsw_halfvec" else ""
        return cls(
            distance=f"OPERATOR({ext}.{op})", vector_type=f"{ext}.vector", halfvec_cast=halfvec
        )


@dataclass(frozen=True)
class CollectionMeta:
    """A registry row, plus the rendered SQL names the store's queries use."""

    name: str
    table: str
    dim: int
    metric: Metric
    multi_tenant: bool
    index: IndexKind
    hnsw_m: int
    hnsw_ef_construction: int
    fields: dict[str, FieldType]
    temporal: frozenset[str]  # the timestamp/date fields (stored as ISO strings)
    metadata: dict[str, Any]
    qualified: str  # "schema"."table", rendered once
    ops: Ops
    loaded_at: float  # time.monotonic() when read from the registry
    alias: str | None = None  # the alias this meta was resolved through
    guard: str = ""  # "<alias check> AND " for reads through the alias, else ""


def registry_sql(schema: str) -> list[sql.Composed]:
    """``CREATE TABLE IF NOT EXISTS`` for the registry and the aliases (run under an advisory
    lock; :func:`alias_function_sql` creates the alias check)."""
    return [
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {reg} (
                name text COLLATE "C" PRIMARY KEY,
                table_name text NOT NULL UNIQUE,
                dim integer NOT NULL CHECK (dim > 0),
                metric text NOT NULL CHECK (metric IN ('cosine', 'l2', 'dot')),
                multi_tenant boolean NOT NULL,
                index_kind text NOT NULL,
                hnsw_m integer NOT NULL,
                hnsw_ef_construction integer NOT NULL,
                fields jsonb NOT NULL DEFAULT '{{}}',
                metadata jsonb NOT NULL DEFAULT '{{}}',
                created_at timestamptz NOT NULL DEFAULT now()
            )"""
        ).format(reg=sql.Identifier(schema, REGISTRY)),
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {aliases} (
                alias text COLLATE "C" PRIMARY KEY,
                collection text COLLATE "C" NOT NULL REFERENCES {reg} (name),
                updated_at timestamptz NOT NULL DEFAULT now()
            )"""
        ).format(aliases=sql.Identifier(schema, ALIASES), reg=sql.Identifier(schema, REGISTRY)),
    ]


def alias_function_sql(schema: str) -> sql.Composed:
    """``CREATE OR REPLACE FUNCTION`` for the alias check (see the module docstring)."""
    return sql.SQL(
        """CREATE OR REPLACE FUNCTION {fn}(alias text, target text) RETURNS boolean
        LANGUAGE plpgsql STABLE PARALLEL SAFE AS $strataml$
        BEGIN
            PERFORM 1 FROM {aliases} a WHERE a.alias = $1 AND a.collection = $2;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = {code},
                    MESSAGE = 'strataml: the alias ' || $1 || ' no longer points at ' || $2;
            END IF;
            RETURN true;
        END
        $strataml$"""
    ).format(
        fn=sql.Identifier(schema, ALIAS_CHECK),
        aliases=sql.Identifier(schema, ALIASES),
        code=sql.Literal(ALIAS_MOVED),
    )


def alias_guard(schema: str, alias: str, target: str) -> str:
    """The ``WHERE`` prefix checking that ``alias`` still points at ``target`` (names are
    validated by :func:`strataml.models.check_name` and rendered as escaped literals)."""
    return (
        sql.SQL("{fn}({alias}, {target}) AND ")
        .format(
            fn=sql.Identifier(schema, ALIAS_CHECK),
            alias=sql.Literal(alias),
            target=sql.Literal(target),
        )
        .as_string(None)
    )


def create_table_sql(
    schema: str,
    table: str,
    ext_schema: str,
    dim: int,
    metric: str,
    *,
    hnsw_m: int,
    hnsw_ef_construction: int,
) -> list[sql.Composed]:
    """The statements creating one collection's table and indexes."""
    ext = sql.Identifier(ext_schema)
    qualified = sql.Identifier(schema, table)
    out = [
        sql.SQL(
            """CREATE TABLE {t} (
                tenant text COLLATE "C" NOT NULL DEFAULT '',
                id text COLLATE "C" NOT NULL,
                embedding {ext}.vector({dim}) NOT NULL,
                text text,
                metadata jsonb NOT NULL DEFAULT '{{}}',
                tsv tsvector GENERATED ALWAYS AS
                    (to_tsvector('english'::regconfig, coalesce(text, ''))) STORED,
                PRIMARY KEY (tenant, id)
            )"""
        ).format(t=qualified, ext=ext, dim=sql.Literal(dim)),
        sql.SQL("CREATE INDEX {name} ON {t} USING gin (tsv)").format(
            name=sql.Identifier(f"{table}_tsv"), t=qualified
        ),
    ]
    hnsw = hnsw_index_sql(
        schema,
        table,
        ext_schema,
        dim,
        metric,
        hnsw_m=hnsw_m,
        hnsw_ef_construction=hnsw_ef_construction,
    )
    if hnsw is not None:
        out.append(hnsw)
    return out


def hnsw_index_name(table: str) -> str:
    return f"{table}_hnsw"


def hnsw_index_sql(
    schema: str,
    table: str,
    ext_schema: str,
    dim: int,
    metric: str,
    *,
    hnsw_m: int,
    hnsw_ef_construction: int,
    concurrently: bool = False,
) -> sql.Composed | None:
    """``CREATE INDEX [CONCURRENTLY]`` for the collection's HNSW index (``None`` for the
    ``exact`` kind)."""
    kind = index_kind_for(dim)
    if kind == "exact":
        return None
    _, vec_ops, half_ops = _METRIC_OPS[metric]
    ext = sql.Identifier(ext_schema)
    column = (
        sql.SQL("embedding")
        if kind == "hnsw"
        else sql.SQL("(embedding::{ext}.halfvec({dim}))").format(ext=ext, dim=sql.Literal(dim))
    )
    return sql.SQL(
        "CREATE INDEX {concurrently}{name} ON {t} USING hnsw ({column} {ext}.{ops}) "
        "WITH (m = {m}, ef_construction = {ef})"
    ).format(
        concurrently=sql.SQL("CONCURRENTLY " if concurrently else ""),
        name=sql.Identifier(hnsw_index_name(table)),
        t=sql.Identifier(schema, table),
        column=column,
        ext=ext,
        ops=sql.Identifier(vec_ops if kind == "hnsw" else half_ops),
        m=sql.Literal(hnsw_m),
        ef=sql.Literal(hnsw_ef_construction),
    )
