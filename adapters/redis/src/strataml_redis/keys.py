"""Key layout of the Redis online stores (the same on a single node and on Redis Cluster).

=====================================  ==================================================
key                                    holds
=====================================  ==================================================
``{prefix}:_views``                    hash: view name -> msgpack ``[entity columns,
                                       created µs]`` (the view registry)
``{prefix}:{view}:{<entity hex>}``     string: one entity's row, a msgpack map of feature
                                       name -> value, decoding exactly like
                                       :func:`strataml.codec.encode_row`
=====================================  ==================================================

* ``{view}`` is the view name percent-encoded (``urllib.parse.quote``, nothing kept but
  letters, digits and ``_.-~``), so it can never contain ``{``, ``}``, ``:`` or a glob
  character: every key has exactly one hash tag and ``{prefix}:{view}:{*`` matches exactly
  the view's rows (used by ``drop``).
* ``<entity hex>`` is the hex of :func:`strataml.codec.encode_key` of the entity's values in
  the view's entity-column order; between braces it is the key's **hash tag**. On Redis
  Cluster the slot depends only on the entity, so rows spread over the cluster and the rows
  of one entity in different views share a slot (one node serves all of an entity's views).
  The registry is a single key in its own slot; it is read once per view and cached.
* A row is one value, so one ``SET`` replaces it atomically (no stale feature of an earlier
  row survives), and a row without features is an empty map: a key that exists. Why not a
  hash with a field per feature: writing a 20-feature hash costs Redis ~7x the CPU of one
  ``SET`` of the same row (measured on Redis 6.2, ``bench/bench_materialize.py``), and the
  atomic replace needed a transaction or a Lua script on top; reads of a few features of very
  wide rows are the one case a hash would serve better.
* Expiry is Redis's own: ``PXAT`` in the ``SET`` (see
  :func:`strataml_redis._encode.expire_at_ms`). Redis checks it on every access, so an
  expired row reads as missing at once, whether or not Redis has reclaimed its memory yet.
"""

from __future__ import annotations

from binascii import hexlify
from urllib.parse import quote

from strataml.errors import InvalidInput

__all__ = ["MAX_VIEW_NAME_BYTES", "KeyLayout"]

MAX_VIEW_NAME_BYTES = 255


class KeyLayout:
    """Builds every key of one store (one ``key_prefix``)."""

    __slots__ = ("prefix", "registry")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.registry = f"{prefix}:_views".encode()

    def view_field(self, view: object) -> bytes:
        """The registry field of a view name (validated: a non-empty, UTF-8 string)."""
        if not isinstance(view, str) or not view:
            raise InvalidInput(f"a view name is a non-empty string, got {view!r}")
        try:
            raw = view.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInput(f"view name {view!r} is not valid Unicode text") from exc
        if len(raw) > MAX_VIEW_NAME_BYTES:
            raise InvalidInput(
                f"view name {view[:40]!r}... is longer than {MAX_VIEW_NAME_BYTES} bytes"
            )
        return raw

    def row_head(self, view: str) -> bytes:
        """``{prefix}:{view}:{`` -- every row key of the view starts with it."""
        return f"{self.prefix}:{quote(view, safe='')}:{{".encode()

    def row_pattern(self, view: str) -> bytes:
        """A ``SCAN MATCH`` pattern matching exactly the view's row keys."""
        return self.row_head(view) + b"*"

    @staticmethod
    def row_key(head: bytes, encoded_key: bytes) -> bytes:
        """The row key of an entity: ``head`` + hex of its encoded key + ``}``."""
        return head + hexlify(encoded_key) + b"}"
