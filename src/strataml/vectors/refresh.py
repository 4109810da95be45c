"""Incremental refresh: keep a collection's embeddings in step with a set of documents.

:func:`refresh` chunks documents, embeds only what changed and writes it through the
:class:`~strataml.protocols.VectorStore` protocol, so it runs on every vector backend.

How it works
------------
* Each chunk is stored as one record with id ``"{doc_id}#{position}"``, the chunk text, the
  document's metadata and these **reserved metadata fields** (user metadata may not use them,
  :class:`~strataml.errors.InvalidInput`):

  ==============  ===========================================================================
  ``_doc``        the document id
  ``_chunk``      the chunk's position (0, 1, ...)
  ``_nchunks``    how many chunks the document has
  ``_thash``      sha256 of the normalised text and the chunker parameters
  ``_hash``       the content hash: sha256 of ``_thash``, the metadata and the embedder's
                  name, version and dimension
  ==============  ===========================================================================

  Text is normalised (Unicode NFC, ``\\r\\n`` and ``\\r`` -> ``\\n``) before hashing and
  chunking; metadata is hashed in canonical form (sorted keys; ``1`` and ``1.0`` hash alike, as
  a field that mixes ints and floats stores floats).
* The current state is read column-wise with ``store.scan_metadata`` (ids and the reserved
  fields as Arrow batches: no vectors, texts or record objects; stores predating it are read
  with ``scan``) and compared with the documents' hashes by Arrow compute, so only the chunks
  of changed and removed documents become Python objects. By hash: a **new** document is
  chunked, embedded and written; a **changed** one too, and its chunks beyond its new length
  are deleted; a document whose text is unchanged but whose metadata changed keeps its vectors
  (read back with ``get``, rewritten with the new metadata, nothing embedded); the chunks of
  documents no longer in the input are **deleted**; **unchanged** documents are not touched.
  Records without ``_doc`` (written by something else) are left alone.
* Everything that can fail on input is checked before anything is written: documents (id,
  text, metadata types, reserved names, duplicate ids), the collection's embedder and
  dimension, the tenant, record sizes, and every embedding (all changed chunks are embedded and
  validated -- :class:`~strataml.embed.CheckedEmbedder` -- before the first write; large
  batches are buffered in a temporary file, so memory stays bounded).
* Writes go in batches of at most ``batch_rows`` records and ``batch_bytes`` bytes (capped by
  the store's ``max_batch_rows`` / ``max_batch_bytes``): upserts first, then deletes, so
  readers never miss a document that still exists.
* **Idempotent on retry**: a run that stops half-way (a crash, a backend error) leaves chunks
  whose hashes are either the old or the new ones; running again finishes the job (a document
  is unchanged only when all its chunks carry its current hash and no stale chunk remains), and
  a run on unchanged input embeds nothing and writes nothing.
* The collection records its embedder (``embedder``, ``embedder_version``, ``embedder_dim`` in
  its metadata, see :func:`~strataml.embed.embedder_metadata`); it is created with them when
  missing. Refreshing with another embedder raises :class:`~strataml.errors.Conflict`, with
  another dimension :class:`~strataml.errors.DimensionMismatch`, and writes nothing.

Run one refresh per collection (and tenant) at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from strataml._args import utf8_error
from strataml.embed.base import (
    EMBEDDER_DIM_KEY,
    EMBEDDER_KEY,
    EMBEDDER_VERSION_KEY,
    CheckedEmbedder,
    Embedder,
    checked,
    embedder_metadata,
)
from strataml.embed.chunking import Chunk, Chunker
from strataml.errors import (
    Conflict,
    DimensionMismatch,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StrataError,
)
from strataml.filters import FieldType
from strataml.models import CollectionInfo, Metric, check_name
from strataml.vectors.batch import check_tenant, merge_field_type, normalize_metadata
from strataml.vectors.columns import batches_from_records, metadata_schema

if TYPE_CHECKING:
    from rich.console import Console

    from strataml.protocols.vectors import VectorStore

__all__ = [
    "RESERVED_FIELDS",
    "Document",
    "ProgressFn",
    "RefreshReport",
    "check_collection",
    "content_hash",
    "ensure_collection",
    "load_documents",
    "normalize_text",
    "refresh",
    "run_refresh_cli",
    "text_hash",
]

DOC: Final = "_doc"
CHUNK: Final = "_chunk"
NCHUNKS: Final = "_nchunks"
THASH: Final = "_thash"
HASH: Final = "_hash"
#: Metadata fields refresh writes on every chunk; user metadata may not use them.
RESERVED_FIELDS: Final = frozenset({DOC, CHUNK, NCHUNKS, THASH, HASH})
_RESERVED_TYPES: Final = {
    DOC: FieldType.STRING,
    CHUNK: FieldType.INT,
    NCHUNKS: FieldType.INT,
    THASH: FieldType.STRING,
    HASH: FieldType.STRING,
}
_DOC_KEYS: Final = frozenset({"id", "text", "metadata"})
#: What the state scan reads of each stored chunk (besides its id): no vector, no text.
_STATE_FIELDS: Final = (DOC, CHUNK, NCHUNKS, THASH, HASH)
DEFAULT_BATCH_ROWS: Final = 1000
DEFAULT_BATCH_BYTES: Final = 16 * 1024 * 1024
#: Embeddings larger than this are buffered in a temporary file rather than in memory.
_MEMORY_BUFFER_BYTES: Final = 256 * 1024 * 1024
_RECORD_OVERHEAD: Final = 64

#: ``progress(phase, done, total)``; phases ``"scan"``, ``"embed"``, ``"write"``, ``"delete"``
#: (``total`` is ``None`` while scanning: the size is not known in advance).
ProgressFn = Callable[[str, int, int | None], None]


class Document(BaseModel):
    """A document to index: a non-empty ``id``, a non-empty ``text`` and optional
    ``metadata`` (copied to each chunk; scalar or list values, see
    :mod:`strataml.vectors.batch`). Plain mappings with these keys work too."""

    id: str
    text: str
    metadata: dict[str, Any] = {}


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh did (counts of documents, then of chunks).

    ``unchanged`` documents were not re-embedded (their leftover stale chunks, from an
    interrupted run, may still have been deleted); ``updated`` includes documents whose
    metadata alone changed (rewritten without embedding). With ``dry_run`` the counts say
    what a real run would do and nothing was embedded or written.
    """

    collection: str
    tenant: str | None
    added: int
    updated: int
    deleted: int
    unchanged: int
    embedded_chunks: int
    written_chunks: int
    deleted_chunks: int
    unmanaged: int
    seconds: float
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        """Whether the run wrote or deleted anything (or, dry, would have)."""
        return bool(self.written_chunks or self.deleted_chunks)

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.deleted} deleted, "
            f"{self.unchanged} unchanged; {self.embedded_chunks} chunks embedded, "
            f"{self.written_chunks} written, {self.deleted_chunks} deleted "
            f"in {self.seconds:.2f} s{' (dry run)' if self.dry_run else ''}"
        )


# ------------------------------------------------------------------------------------ hashing
def normalize_text(text: str) -> str:
    """The text that is hashed and chunked: NFC, newlines normalised to ``\\n``."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        f = float(value)
        return repr(f) if f == value else repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return repr(value)


class _Hasher:
    """The refresh hashes for one chunker and embedder (their parts encoded once)."""

    __slots__ = ("_text", "ident", "prefix")

    def __init__(self, chunker: Chunker, embedder: Embedder) -> None:
        self.prefix = json.dumps(chunker.params, sort_keys=True).encode() + b"\0"
        ident = [str(embedder.name), str(embedder.version), int(embedder.dim)]
        self.ident = b"\0" + json.dumps(ident, ensure_ascii=False).encode("utf-8", "surrogatepass")
        self._text = hashlib.sha256(self.prefix)  # the prefix hashed once, copied per text

    def text(self, normalized: str) -> str:
        digest = self._text.copy()
        digest.update(normalized.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def content(self, thash: str, metadata: Mapping[str, Any]) -> str:
        if not metadata:
            return hashlib.sha256(thash.encode() + self.ident).hexdigest()
        digest = hashlib.sha256(thash.encode())
        meta = {k: _canonical(v) for k, v in metadata.items() if k not in RESERVED_FIELDS}
        if meta:
            blob = json.dumps(meta, sort_keys=True, ensure_ascii=False)
            digest.update(b"\0" + blob.encode("utf-8", "surrogatepass"))
        digest.update(self.ident)
        return digest.hexdigest()


def text_hash(text: str, chunker: Chunker) -> str:
    """sha256 of ``chunker``'s parameters and the normalised ``text`` (the ``_thash`` field)."""
    return hashlib.sha256(
        json.dumps(chunker.params, sort_keys=True).encode()
        + b"\0"
        + normalize_text(text).encode("utf-8", "surrogatepass")
    ).hexdigest()


def content_hash(thash: str, metadata: Mapping[str, Any], embedder: Embedder) -> str:
    """The ``_hash`` field: sha256 of a text hash, the canonical metadata (reserved fields
    ignored) and the embedder's name, version and dimension."""
    return _Hasher(Chunker(), embedder).content(thash, metadata)


# ---------------------------------------------------------------------------------- documents
@dataclass(slots=True)
class _Doc:
    id: str
    text: str
    metadata: dict[str, Any]
    thash: str = ""
    hash: str = ""


def _doc_parts(doc: Any, where: str) -> tuple[Any, Any, Any]:
    if type(doc) is dict and doc.keys() <= _DOC_KEYS:  # the common case, without ABC checks
        return doc.get("id"), doc.get("text"), doc.get("metadata")
    if isinstance(doc, BaseModel):
        data = doc.model_dump()
        return data.get("id"), data.get("text"), data.get("metadata")
    if isinstance(doc, Mapping):
        unknown = set(doc) - _DOC_KEYS
        if unknown:
            raise InvalidInput(
                f"{where}: unknown keys {sorted(map(str, unknown))}; a document has id, text "
                "and metadata (put other fields in metadata)"
            )
        return doc.get("id"), doc.get("text"), doc.get("metadata")
    raise InvalidInput(
        f"{where}: expected a mapping or a pydantic model with id, text and metadata, "
        f"got {type(doc).__name__}"
    )


def _check_unicode(value: Any, where: str) -> None:
    """Stores keep text as UTF-8: a lone surrogate (``"\\ud800"``) cannot be written, so it is
    refused before the first write rather than by the store half-way through a refresh."""
    items = value if isinstance(value, list) else (value,)
    for item in items:
        bad = utf8_error(item) if isinstance(item, str) else None
        if bad is not None:
            raise InvalidInput(f"{where}: not valid Unicode text ({bad.reason})") from bad


def _prepare_documents(documents: Iterable[Any], known: Mapping[str, FieldType]) -> list[_Doc]:
    """Validate every document (metadata types also against the ``known`` field types)."""
    if isinstance(documents, Mapping | str | bytes | BaseModel):
        raise InvalidInput("documents: pass an iterable of documents (a list), not one document")
    try:
        items = iter(documents)
    except TypeError as exc:
        raise InvalidInput(f"documents: expected an iterable of documents: {exc}") from exc
    docs: list[_Doc] = []
    seen: set[str] = set()
    types: dict[str, FieldType] = dict(known)
    for i, raw in enumerate(items):
        did, text, meta = _doc_parts(raw, f"documents[{i}]")
        if type(did) is not str:
            if isinstance(did, bool) or not isinstance(did, str | int):
                raise InvalidInput(f"documents[{i}]: a document needs an id (a non-empty string)")
            did = str(did)
        if not did:
            raise InvalidInput(f"documents[{i}]: a document needs an id (a non-empty string)")
        if not isinstance(text, str) or not text or text.isspace():
            raise InvalidInput(
                f"documents[{i}] (id {did!r}): a document needs a text (a non-empty string)"
            )
        if did in seen:
            raise InvalidInput(
                f"documents[{i}] (id {did!r}): duplicate document id; ids are unique per refresh"
            )
        _check_unicode(did, f"documents[{i}] (id {did!r})")
        _check_unicode(text, f"documents[{i}] (id {did!r}).text")
        seen.add(did)
        if meta is None:
            docs.append(_Doc(did, normalize_text(text), {}))
            continue
        where = f"documents[{i}] (id {did!r})"
        values, mtypes = normalize_metadata(meta, f"{where}.metadata")
        for name, value in values.items():
            _check_unicode(value, f"{where}.metadata.{name}")
        clash = RESERVED_FIELDS & values.keys()
        if clash:
            raise InvalidInput(
                f"{where}: metadata fields {sorted(clash)} are reserved for refresh "
                f"bookkeeping ({', '.join(sorted(RESERVED_FIELDS))}); rename them"
            )
        for name, ftype in mtypes.items():
            prior = types.get(name)
            merged = ftype if prior is None else merge_field_type(prior, ftype)
            if merged is None:
                raise InvalidInput(
                    f"{where}: metadata field {name!r} holds {prior} values elsewhere, got a "
                    f"{ftype}; a field keeps one type"
                )
            types[name] = merged
        docs.append(_Doc(did, normalize_text(text), values))
    return docs


# --------------------------------------------------------------------------------- collection
def check_collection(info: CollectionInfo, embedder: Embedder) -> None:
    """Raise unless ``info``'s collection holds vectors of ``embedder``.

    :class:`~strataml.errors.DimensionMismatch` when the dimensions differ,
    :class:`~strataml.errors.Conflict` when the recorded model name or version differs or the
    collection records no embedder (create collections with
    :func:`~strataml.embed.embedder_metadata`).
    """
    label = f"{embedder.name}@{embedder.version}"
    if info.dim != embedder.dim:
        raise DimensionMismatch(
            f"collection {info.name!r} holds {info.dim}-dimensional vectors; embedder {label} "
            f"makes {embedder.dim}: build a new collection (blue/green) for a new model"
        )
    meta = info.metadata
    if EMBEDDER_KEY not in meta or EMBEDDER_VERSION_KEY not in meta:
        raise Conflict(
            f"collection {info.name!r} does not record its embedder; refresh only manages "
            "collections created with embedder metadata (strataml.embed.embedder_metadata)"
        )
    recorded = f"{meta[EMBEDDER_KEY]}@{meta[EMBEDDER_VERSION_KEY]}"
    dim = meta.get(EMBEDDER_DIM_KEY, info.dim)
    if recorded != label or dim != embedder.dim:
        raise Conflict(
            f"collection {info.name!r} holds vectors of {recorded}, not {label}; a collection "
            "never mixes models: build a new version (strataml.vectors.bluegreen) instead"
        )


def ensure_collection(
    store: VectorStore,
    collection: str,
    embedder: Embedder,
    *,
    metric: Metric = "cosine",
    multi_tenant: bool = False,
    metadata: Mapping[str, Any] | None = None,
    create: bool = True,
) -> CollectionInfo | None:
    """The collection's info after checking it holds ``embedder``'s vectors
    (:func:`check_collection`); when it does not exist, create it (``create``) with the
    embedder's metadata plus ``metadata``, or return ``None``."""
    check_name("collection", collection)
    try:
        info = store.describe(collection)
    except NotFound:
        if not create:
            return None
        meta = {**(metadata or {}), **embedder_metadata(embedder)}
        try:
            return store.create_collection(
                collection, embedder.dim, metric, multi_tenant=multi_tenant, metadata=meta
            )
        except Conflict:  # created concurrently: check what is there
            info = store.describe(collection)
    check_collection(info, embedder)
    return info


# ------------------------------------------------------------------------------------- state
@dataclass(slots=True)
class _Stored:
    id: str
    position: int
    nchunks: int
    thash: str
    hash: str


@dataclass
class _State:
    """The stored chunks, compared with the current documents' hashes.

    ``unchanged``: documents whose chunks are complete with their current hash (nothing to
    do but delete ``leftovers``, stale chunks of theirs from an interrupted run); ``stored``:
    the chunks of every other managed document in the store, by document id."""

    unchanged: set[str] = field(default_factory=set)
    leftovers: list[str] = field(default_factory=list)
    stored: dict[str, list[_Stored]] = field(default_factory=dict)
    unmanaged: int = 0


def _metadata_batches(
    store: VectorStore, collection: str, tenant: str | None, scan_batch: int
) -> Iterator[pa.RecordBatch]:
    """The reserved fields of every stored chunk, column-wise (``scan`` for stores that
    predate ``scan_metadata``)."""
    scan_metadata = getattr(store, "scan_metadata", None)
    if scan_metadata is not None:
        batches: Iterator[pa.RecordBatch] = scan_metadata(
            collection, _STATE_FIELDS, tenant=tenant, batch_size=scan_batch
        )
        return batches
    schema = metadata_schema(_STATE_FIELDS, store.describe(collection).fields)
    records = store.scan(collection, tenant=tenant, include_vectors=False, batch_size=scan_batch)
    return batches_from_records(records, schema)


def _ints(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Positions and counts as int64; anything that is not an integer becomes -1."""
    if pa.types.is_integer(column.type):
        return pc.fill_null(pc.cast(column, pa.int64()), -1)
    if pa.types.is_floating(column.type):  # a field widened to float by another writer
        whole = pc.fill_null(pc.equal(pc.floor(column), column), False)
        return pc.if_else(whole, pc.cast(pc.fill_null(column, -1.0), pa.int64(), safe=False), -1)
    return pa.chunked_array([pa.array([-1] * len(column), pa.int64())])


def _strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    return pa.chunked_array([pa.nulls(len(column), pa.string())])


def _read_state(
    store: VectorStore,
    collection: str,
    tenant: str | None,
    docs: Sequence[_Doc],
    scan_batch: int,
    progress: ProgressFn | None,
) -> _State:
    """Read the reserved fields of every stored chunk (``scan_metadata``) and compare them
    with ``docs`` (hashed) column-wise: a document is unchanged when every position ``0..n-1``
    is stored under its canonical id with the current hash and ``_nchunks == n``. Only the
    chunks of other documents (changed, or gone from the input) become Python objects."""
    batches: list[pa.RecordBatch] = []
    seen = 0
    for batch in _metadata_batches(store, collection, tenant, scan_batch):
        batches.append(batch)
        seen += batch.num_rows
        if progress:
            progress("scan", seen, None)
    state = _State()
    if not seen:
        return state
    if all(b.schema.equals(batches[0].schema) for b in batches):
        table = pa.Table.from_batches(batches).flatten()
    else:  # a field widened (int -> float) by another writer during the scan
        tables = [pa.Table.from_batches([b]) for b in batches]
        table = pa.concat_tables(tables, promote_options="permissive").flatten()
    ids = table.column("id")
    doc = _strings(table.column(f"metadata.{DOC}"))
    pos = _ints(table.column(f"metadata.{CHUNK}"))
    nchunks = _ints(table.column(f"metadata.{NCHUNKS}"))
    thash = pc.fill_null(_strings(table.column(f"metadata.{THASH}")), "")
    chash = pc.fill_null(_strings(table.column(f"metadata.{HASH}")), "")
    managed = pc.is_valid(doc)
    state.unmanaged = len(table) - pc.sum(managed).as_py()
    current = pc.take(
        pa.array([d.hash for d in docs], pa.string()),
        pc.index_in(doc, value_set=pa.array([d.id for d in docs], pa.string())),
    )
    match = pc.fill_null(pc.equal(chash, current), False)
    canonical = pc.fill_null(
        pc.equal(ids, pc.binary_join_element_wise(doc, pc.cast(pos, pa.string()), "#")), False
    )
    in_range = pc.and_(pc.greater_equal(pos, 0), pc.less(pos, nchunks))
    valid = pc.and_(pc.and_(match, canonical), in_range)
    groups = (
        pa.table({"doc": doc, "n": nchunks, "valid": valid})
        .filter(match)
        .group_by("doc")
        .aggregate([("n", "min"), ("n", "max"), ("valid", "sum")])
    )
    complete = pc.and_(
        pc.and_(pc.equal(groups["n_min"], groups["n_max"]), pc.greater(groups["n_min"], 0)),
        pc.equal(groups["valid_sum"], groups["n_min"]),
    )
    unchanged = groups["doc"].filter(complete)
    state.unchanged = set(unchanged.to_pylist())
    of_unchanged = pc.is_in(doc, value_set=unchanged.combine_chunks())
    state.leftovers = ids.filter(pc.and_(of_unchanged, pc.invert(valid))).to_pylist()
    rest = pa.table(
        {"id": ids, "doc": doc, "pos": pos, "n": nchunks, "thash": thash, "hash": chash}
    ).filter(pc.and_(managed, pc.invert(of_unchanged)))
    stored = state.stored
    for rid, d, p, n, th, h in zip(*(rest.column(i).to_pylist() for i in range(6)), strict=True):
        entry = _Stored(rid, p, n, th, h)
        found = stored.get(d)
        if found is None:
            stored[d] = [entry]
        else:
            found.append(entry)
    return state


def _text_complete(doc_id: str, stored: list[_Stored], thash: str) -> int | None:
    """``n`` if positions ``0..n-1`` are all stored under their canonical ids with text hash
    ``thash`` and ``_nchunks == n`` (the vectors can be reused); else ``None``."""
    n = -1
    positions: set[int] = set()
    prefix = f"{doc_id}#"
    for s in stored:
        if s.thash != thash:
            continue
        if n < 0:
            n = s.nchunks
        elif s.nchunks != n:
            return None
        if 0 <= s.position < n and s.id == prefix + str(s.position):
            positions.add(s.position)
    return n if n > 0 and len(positions) == n else None


# -------------------------------------------------------------------------------------- plan
@dataclass
class _Plan:
    embed: list[tuple[_Doc, list[Chunk]]] = field(default_factory=list)
    reuse: list[tuple[_Doc, list[Chunk]]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


def _chunks(chunker: Chunker, d: _Doc) -> list[Chunk]:
    chunks = chunker.chunk(d.id, d.text)
    if not chunks:
        raise InvalidInput(f"document {d.id!r} has no text to embed once chunked")
    return chunks


def _hash_documents(docs: list[_Doc], chunker: Chunker, embedder: Embedder) -> None:
    hasher = _Hasher(chunker, embedder)
    for d in docs:
        d.thash = hasher.text(d.text)
        d.hash = hasher.content(d.thash, d.metadata)


def _plan(docs: list[_Doc], state: _State, chunker: Chunker) -> _Plan:
    """What to embed, rewrite and delete, for hashed ``docs`` against the stored ``state``."""
    plan = _Plan()
    plan.stale.extend(state.leftovers)
    unchanged, stored_docs = state.unchanged, state.stored
    for d in docs:
        if d.id in unchanged:
            plan.unchanged += 1
            continue
        stored = stored_docs.pop(d.id, None)
        if stored is None:
            chunks = _chunks(chunker, d)
            plan.added += 1
            plan.embed.append((d, chunks))
            continue
        plan.updated += 1
        chunks = _chunks(chunker, d)
        if _text_complete(d.id, stored, d.thash) == len(chunks):
            plan.reuse.append((d, chunks))
        else:
            plan.embed.append((d, chunks))
        keep = {c.id for c in chunks}
        plan.stale.extend(s.id for s in stored if s.id not in keep)
    for stored in stored_docs.values():
        plan.deleted += 1
        plan.stale.extend(s.id for s in stored)
    return plan


# ------------------------------------------------------------------------------------ writing
@contextmanager
def _buffer(rows: int, dim: int) -> Iterator[npt.NDArray[np.float32]]:
    """A ``(rows, dim)`` float32 buffer: in memory, or a temporary file when large."""
    if rows * dim * 4 <= _MEMORY_BUFFER_BYTES:
        yield np.empty((rows, dim), dtype=np.float32)
        return
    with tempfile.TemporaryDirectory(prefix="strataml-refresh-") as tmp:
        mm = np.lib.format.open_memmap(
            str(Path(tmp) / "vectors.npy"), mode="w+", dtype=np.float32, shape=(rows, dim)
        )
        try:
            yield mm
        finally:
            del mm


def _record_bytes(rid: str, text: str, meta: Mapping[str, Any], dim: int) -> int:
    size = len(rid) + 4 * dim + len(text.encode("utf-8", "surrogatepass")) + _RECORD_OVERHEAD
    for k, v in meta.items():
        size += len(k) + (len(v.encode("utf-8", "surrogatepass")) if isinstance(v, str) else 16)
    return size


def _chunk_meta(d: _Doc, c: Chunk, n: int) -> dict[str, Any]:
    return {
        **d.metadata,
        DOC: d.id,
        CHUNK: c.position,
        NCHUNKS: n,
        THASH: d.thash,
        HASH: d.hash,
    }


def _batches(
    records: Iterable[tuple[dict[str, Any], int]], max_rows: int, max_bytes: int
) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for rec, nbytes in records:
        if batch and (len(batch) >= max_rows or size + nbytes > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(rec)
        size += nbytes
    if batch:
        yield batch


def _limits(store: VectorStore, batch_rows: int | None, batch_bytes: int | None) -> tuple[int, int]:
    caps = store.capabilities
    rows = batch_rows if batch_rows is not None else DEFAULT_BATCH_ROWS
    nbytes = batch_bytes if batch_bytes is not None else DEFAULT_BATCH_BYTES
    for name, v in (("batch_rows", rows), ("batch_bytes", nbytes)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise InvalidInput(f"{name} must be a positive integer, got {v!r}")
    if caps.max_batch_rows is not None:
        rows = min(rows, caps.max_batch_rows)
    if caps.max_batch_bytes is not None:
        nbytes = min(nbytes, caps.max_batch_bytes)
    return rows, nbytes


def refresh(
    store: VectorStore,
    collection: str,
    documents: Iterable[Document | Mapping[str, Any]],
    embedder: Embedder,
    *,
    chunker: Chunker | None = None,
    tenant: str | None = None,
    metric: Metric = "cosine",
    multi_tenant: bool = False,
    collection_metadata: Mapping[str, Any] | None = None,
    batch_rows: int | None = None,
    batch_bytes: int | None = None,
    embed_batch: int = 256,
    scan_batch: int = 5000,
    progress: ProgressFn | None = None,
    dry_run: bool = False,
) -> RefreshReport:
    """Make ``collection`` (``tenant``'s part of it) hold exactly the chunks of ``documents``,
    embedding only new and changed ones (see the module docstring).

    ``documents`` is the *complete* set: documents stored earlier and absent now are deleted.
    A missing collection is created with ``embedder``'s dimension and metadata (plus
    ``collection_metadata``), ``metric`` and ``multi_tenant``. ``chunker`` defaults to
    ``Chunker()`` (1000 characters, 100 overlap). Writes go in batches of at most
    ``batch_rows`` records / ``batch_bytes`` bytes (default 1000 / 16 MiB, capped by the
    store's limits); ``embed_batch`` texts go to the embedder at once. ``progress`` is called
    as ``progress(phase, done, total)``. ``dry_run`` plans without embedding or writing.

    Raises (before anything is written): :class:`InvalidInput` (a document without id or
    text, duplicate ids, bad or reserved metadata, a tenant the collection does not take, an
    embedder returning NaN/inf or the wrong number of rows), :class:`DimensionMismatch` (the
    embedder's dimension differs from the collection's, or its output does),
    :class:`Conflict` (the collection holds another embedder's vectors),
    :class:`LimitExceeded` (a chunk larger than the store's ``max_record_bytes``). Store errors
    while writing propagate; run again to converge.
    """
    t0 = time.perf_counter()
    emb: CheckedEmbedder = checked(embedder)
    chunker = chunker if chunker is not None else Chunker()
    if not isinstance(chunker, Chunker):
        raise InvalidInput(f"chunker must be a strataml.embed.Chunker, got {type(chunker)!r}")
    if isinstance(embed_batch, bool) or not isinstance(embed_batch, int) or embed_batch <= 0:
        raise InvalidInput(f"embed_batch must be a positive integer, got {embed_batch!r}")
    max_rows, max_bytes = _limits(store, batch_rows, batch_bytes)
    info = ensure_collection(
        store,
        collection,
        emb,
        metric=metric,
        multi_tenant=multi_tenant,
        metadata=collection_metadata,
        create=False,
    )
    mt = info.multi_tenant if info is not None else multi_tenant
    tenant = check_tenant(mt, tenant, collection)
    known = dict(info.fields) if info is not None else {}
    for name, ftype in _RESERVED_TYPES.items():
        prior = known.get(name)
        if prior is not None and merge_field_type(prior, ftype) is None:
            raise Conflict(
                f"collection {collection!r} has a {prior} field {name!r}; refresh reserves it"
            )
        known[name] = prior or ftype
    docs = _prepare_documents(documents, known)

    _hash_documents(docs, chunker, emb)
    state = _State()
    if info is not None:
        state = _read_state(store, collection, tenant, docs, scan_batch, progress)
    unmanaged = state.unmanaged
    plan = _plan(docs, state, chunker)
    to_embed = [(d, c) for d, chunks in plan.embed for c in chunks]
    rewrite = [(d, c, len(chunks)) for d, chunks in plan.reuse for c in chunks]
    max_record = store.capabilities.max_record_bytes
    records_bytes: list[int] = []
    for d, chunks in (*plan.embed, *plan.reuse):
        for c in chunks:
            nbytes = _record_bytes(c.id, c.text, _chunk_meta(d, c, len(chunks)), emb.dim)
            if max_record is not None and nbytes > max_record:
                raise LimitExceeded(
                    f"chunk {c.id!r} is about {nbytes} bytes as a record; the store accepts "
                    f"{max_record}: use a smaller chunk size"
                )
            records_bytes.append(nbytes)

    def report(embedded: int, written: int, deleted_chunks: int) -> RefreshReport:
        return RefreshReport(
            collection=collection,
            tenant=tenant,
            added=plan.added,
            updated=plan.updated,
            deleted=plan.deleted,
            unchanged=plan.unchanged,
            embedded_chunks=embedded,
            written_chunks=written,
            deleted_chunks=deleted_chunks,
            unmanaged=unmanaged,
            seconds=time.perf_counter() - t0,
            dry_run=dry_run,
        )

    if dry_run:
        return report(len(to_embed), len(to_embed) + len(rewrite), len(plan.stale))

    with _buffer(len(to_embed), emb.dim) as vectors:
        for i in range(0, len(to_embed), embed_batch):
            part = to_embed[i : i + embed_batch]
            vectors[i : i + len(part)] = emb.embed([c.text for _, c in part])
            if progress:
                progress("embed", i + len(part), len(to_embed))
        reused = _read_vectors(store, collection, tenant, [c.id for _, c, _ in rewrite], max_rows)
        if info is None:
            info = ensure_collection(
                store,
                collection,
                emb,
                metric=metric,
                multi_tenant=multi_tenant,
                metadata=collection_metadata,
            )
        sizes = iter(records_bytes)
        counts = {d.id: len(chunks) for d, chunks in plan.embed}

        def records() -> Iterator[tuple[dict[str, Any], int]]:
            for j, (d, c) in enumerate(to_embed):
                yield _record(d, c, counts[d.id], vectors[j], tenant), next(sizes)
            for d, c, n in rewrite:
                yield _record(d, c, n, reused[c.id], tenant), next(sizes)

        written = 0
        total = len(to_embed) + len(rewrite)
        for batch in _batches(records(), max_rows, max_bytes):
            written += store.upsert(collection, batch)
            if progress:
                progress("write", written, total)
    removed = 0
    for i in range(0, len(plan.stale), max_rows):
        ids = plan.stale[i : i + max_rows]
        store.delete(collection, ids, tenant=tenant)
        removed += len(ids)
        if progress:
            progress("delete", removed, len(plan.stale))
    return report(len(to_embed), written, removed)


def _record(
    d: _Doc, c: Chunk, n: int, vector: npt.NDArray[np.float32], tenant: str | None
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": c.id,
        "vector": np.array(vector, dtype=np.float32),
        "text": c.text,
        "metadata": _chunk_meta(d, c, n),
    }
    if tenant is not None:
        rec["tenant"] = tenant
    return rec


def _read_vectors(
    store: VectorStore, collection: str, tenant: str | None, ids: Sequence[str], batch: int
) -> dict[str, npt.NDArray[np.float32]]:
    out: dict[str, npt.NDArray[np.float32]] = {}
    for i in range(0, len(ids), batch):
        for rec in store.get(collection, ids[i : i + batch], tenant=tenant, include_vectors=True):
            out[rec.id] = np.asarray(rec.vector, dtype=np.float32)
    missing = [i for i in ids if i not in out]
    if missing:  # deleted concurrently: refresh again
        raise Conflict(
            f"collection {collection!r}: chunks {missing[:3]} disappeared during the refresh; "
            "run it again"
        )
    return out


# --------------------------------------------------------------------------------------- CLI
def load_documents(
    source: str | Path, *, pattern: str = "**/*", suffixes: Sequence[str] = (".txt", ".md", ".rst")
) -> list[dict[str, Any]]:
    """Documents from a JSONL file (one ``{"id", "text", "metadata"?}`` object a line) or a
    directory of UTF-8 text files (id = path relative to the directory, metadata ``path``).

    Raises :class:`InvalidInput` for a missing source, a bad JSON line or a file that is not
    UTF-8 (naming the line or file).
    """
    path = Path(source)
    if path.is_dir():
        docs: list[dict[str, Any]] = []
        for f in sorted(path.glob(pattern)):
            if not f.is_file() or (suffixes and f.suffix.lower() not in suffixes):
                continue
            rel = f.relative_to(path).as_posix()
            try:
                text = f.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"{f}: not UTF-8 text: {exc}") from exc
            docs.append({"id": rel, "text": text, "metadata": {"path": rel}})
        return docs
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file or directory")
    out: list[dict[str, Any]] = []
    data = path.read_bytes()
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInput(f"{path}:{line_no}: not UTF-8 text: {exc}") from exc
    with io.StringIO(content, newline=None) as fh:  # universal newlines, as a text file
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{n}: not a JSON object: {exc}") from exc
            if not isinstance(doc, dict):
                raise InvalidInput(f"{path}:{n}: expected a JSON object with id and text")
            out.append(doc)
    return out


def _make_embedder(
    kind: str, docs: list[dict[str, Any]], chunker: Chunker, model_path: Path, dim: int
) -> tuple[Embedder, str]:
    if kind == "minilm":
        from strataml.embed.sentence import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(), "all-MiniLM-L6-v2 (CPU)"
    if kind != "lsa":
        raise InvalidInput(f"unknown embedder {kind!r}; use 'lsa' or 'minilm'")
    from strataml.embed.lsa import LSAEmbedder

    if model_path.exists():
        return LSAEmbedder.load(model_path), f"LSA loaded from {model_path}"
    texts: list[str] = []
    for i, raw in enumerate(docs):
        did, text, _ = _doc_parts(raw, f"documents[{i}]")
        if isinstance(text, str) and isinstance(did, str | int) and text.strip():
            texts.extend(c.text for c in chunker.chunk(str(did), normalize_text(text)))
    fit_dim = max(2, min(dim, len(texts) - 1))
    model = LSAEmbedder(fit_dim)
    try:
        model.fit(texts)
    except InvalidInput as exc:  # tiny corpus: fewer latent dimensions than asked
        raise InvalidInput(f"cannot fit LSA on these documents: {exc}") from exc
    model.save(model_path)
    return model, f"LSA (dim {fit_dim}) fitted on {len(texts)} chunks, saved to {model_path}"


def run_refresh_cli(
    source: str | Path,
    collection: str,
    *,
    profile: str | None = None,
    data_dir: str | Path | None = None,
    embedder: Literal["lsa", "minilm"] = "lsa",
    lsa_model: str | Path | None = None,
    lsa_dim: int = 256,
    chunk_size: int = 1000,
    chunk_overlap: int = 100,
    chunk_unit: Literal["chars", "tokens"] = "chars",
    tenant: str | None = None,
    dry_run: bool = False,
    as_json: bool = False,
    console: Console | None = None,
) -> int:
    """``strataml refresh SOURCE COLLECTION``: refresh a collection of ``profile`` from a JSONL
    file or a directory of text files; returns the exit code (0 ok, 2 on a strataml error).

    With ``embedder="lsa"`` the fitted model is kept in ``lsa_model`` (default
    ``<profile data_dir>/embedders/<collection>.lsa.npz``): the first run fits and saves it,
    later runs load it, so unchanged documents keep their vectors.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    import strataml

    out = console or Console()
    try:
        # before anything is fitted or saved: the default model path is built from the name
        check_name("collection", collection)
        docs = load_documents(source)
        chunker = Chunker(size=chunk_size, overlap=chunk_overlap, unit=chunk_unit)
        with strataml.open(profile, data_dir=data_dir) as stack:
            model_path = (
                Path(lsa_model)
                if lsa_model is not None
                else Path(stack.profile.data_dir) / "embedders" / f"{collection}.lsa.npz"
            )
            emb, how = _make_embedder(embedder, docs, chunker, model_path, lsa_dim)
            if not as_json:
                out.print(f"{len(docs):,} documents from {source}; embedder: {how}")
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=out,
                transient=True,
                disable=as_json,
            ) as bar:
                tasks: dict[str, Any] = {}

                def progress(phase: str, done: int, total: int | None) -> None:
                    if phase not in tasks:
                        tasks[phase] = bar.add_task(phase, total=total)
                    bar.update(tasks[phase], completed=done, total=total)

                result = refresh(
                    stack.vectors,
                    collection,
                    docs,
                    emb,
                    chunker=chunker,
                    tenant=tenant,
                    multi_tenant=tenant is not None,
                    progress=progress,
                    dry_run=dry_run,
                )
    except StrataError as exc:
        if as_json:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        else:
            out.print(f"[bold red]error:[/] {exc}")
        return 2
    if as_json:
        doc = {k: getattr(result, k) for k in result.__dataclass_fields__}
        print(json.dumps(doc))
    else:
        out.print(f"{collection}: {result.summary()}")
    return 0
