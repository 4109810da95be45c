"""Names and keys: how strataml names, ids and tenants become Milvus names and primary keys.

Collection names
----------------
strataml collection (and alias) names are ``[A-Za-z_][A-Za-z0-9_-]{0,127}``; Milvus allows
letters, digits and ``_`` only. A name maps to ``collection_prefix + escape(name)`` where
``escape`` writes ``_`` as ``__`` and ``-`` as ``_x``: reversible, so :meth:`collections` lists
the strataml names, and no two strataml names share a Milvus name. The store's own registry
collection is ``collection_prefix + "_strataml_registry"``, which no strataml name maps to
(``_s`` is not an escape). A mapped name longer than Milvus's 255 characters raises
:class:`~strataml.errors.InvalidInput`.

Primary keys
------------
Ids are unique per tenant, so the primary key is the tenant and the id, each encoded with
URL-safe base64 (no padding) and joined by ``.``: ``b64(tenant) + "." + b64(id)`` (just
``b64(id)`` in a single-tenant collection). The ``tkey`` field holds ``b64(tenant)`` (``""``
when single-tenant). Both are decoded back on every read. Base64 keeps every key and tenant
predicate a plain ``[A-Za-z0-9_-]`` literal: nothing a caller writes as an id or tenant is ever
formatted into an expression, whatever characters it contains.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from strataml.errors import InvalidInput, LimitExceeded

__all__ = [
    "ID_MAX_BYTES",
    "PK_MAX_LENGTH",
    "TENANT_MAX_BYTES",
    "TKEY_MAX_LENGTH",
    "decode_key",
    "encode_key",
    "encode_tenant",
    "from_milvus_name",
    "registry_name",
    "to_milvus_name",
]

#: Longest id / tenant (UTF-8 bytes) a record may have.
ID_MAX_BYTES: Final = 1024
TENANT_MAX_BYTES: Final = 256
#: VARCHAR capacities of the key fields (base64 of the limits above, plus the separator).
PK_MAX_LENGTH: Final = 2048
TKEY_MAX_LENGTH: Final = 512
_MILVUS_NAME_MAX: Final = 255


def to_milvus_name(prefix: str, name: str) -> str:
    """The Milvus collection (or alias) name of a validated strataml name."""
    out = prefix + name.replace("_", "__").replace("-", "_x")
    if len(out) > _MILVUS_NAME_MAX:
        raise InvalidInput(
            f"name {name!r} is too long for Milvus once mapped ({len(out)} > "
            f"{_MILVUS_NAME_MAX} characters, counting the prefix and '_' doubled)"
        )
    return out


def from_milvus_name(prefix: str, milvus_name: str) -> str | None:
    """The strataml name a Milvus name maps back to, or ``None`` if it is not one of ours."""
    if not milvus_name.startswith(prefix):
        return None
    rest = milvus_name[len(prefix) :]
    if not rest:
        return None
    out: list[str] = []
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch != "_":
            out.append(ch)
            i += 1
            continue
        nxt = rest[i + 1 : i + 2]
        if nxt == "_":
            out.append("_")
        elif nxt == "x":
            out.append("-")
        else:
            return None
        i += 2
    name = "".join(out)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$", name):
        return None
    return name


def registry_name(prefix: str) -> str:
    """The registry collection (field types, emulated aliases) of stores using ``prefix``."""
    return prefix + "_strataml_registry"


def _b64(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode("utf-8")).rstrip(b"=").decode("ascii")


def _unb64(value: str) -> str:
    pad = "=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(value + pad).decode("utf-8")


def _utf8_len(value: str, what: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} {value!r} is not valid Unicode text ({exc.reason})") from exc


def encode_tenant(tenant: str | None) -> str:
    """The ``tkey`` of a tenant (``""`` for single-tenant collections)."""
    if tenant is None:
        return ""
    if _utf8_len(tenant, "tenant") > TENANT_MAX_BYTES:
        raise LimitExceeded(f"tenant {tenant[:40]!r}... is longer than {TENANT_MAX_BYTES} bytes")
    return _b64(tenant)


def encode_key(tenant: str | None, rid: str) -> str:
    """The primary key of record ``rid`` of ``tenant``.

    Raises :class:`~strataml.errors.LimitExceeded` for an id longer than :data:`ID_MAX_BYTES`
    (or a tenant longer than :data:`TENANT_MAX_BYTES`) and
    :class:`~strataml.errors.InvalidInput` for text that is not valid Unicode.
    """
    if _utf8_len(rid, "id") > ID_MAX_BYTES:
        raise LimitExceeded(f"id {rid[:40]!r}... is longer than {ID_MAX_BYTES} bytes")
    key = _b64(rid)
    return key if tenant is None else f"{encode_tenant(tenant)}.{key}"


def decode_key(pk: str) -> tuple[str | None, str]:
    """``(tenant, id)`` of a primary key made by :func:`encode_key`."""
    try:
        if "." in pk:
            tkey, key = pk.split(".", 1)
            return _unb64(tkey), _unb64(key)
        return None, _unb64(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"primary key {pk!r} was not written by strataml") from exc
