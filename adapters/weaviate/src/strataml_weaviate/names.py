"""strataml names -> Weaviate names (collections, aliases, properties, tenants) and object ids.

Weaviate restricts names: collections and aliases match ``[A-Z][_0-9A-Za-z]{0,254}``, properties
``[_A-Za-z][_0-9A-Za-z]*`` (``id``, ``_id``, ``_additional`` reserved), tenants
``[A-Za-z0-9_-]{1,64}``; some servers compare collection and property names case-insensitively.
strataml names allow ``-`` and are case-sensitive, and tenants are any non-empty string. So every
name is *escaped* into an all-lowercase form, which is injective and stays injective when a
server ignores case:

=================  ====================================================================
character          becomes
=================  ====================================================================
``a-z``, ``0-9``   itself (and ``-`` itself, in tenant names)
``_``              ``__``
``A-Z``            ``_`` + the lowercase letter
anything else      ``_`` + two uppercase hex digits per UTF-8 byte (``-`` -> ``_2D``)
=================  ====================================================================

* **Collections and aliases**: ``<prefix>_<escaped name>`` (``docs`` -> ``Strataml_docs``,
  ``My-Docs`` -> ``Strataml__my_2D_docs``). A name whose escaped form would pass Weaviate's
  255 characters is written ``<prefix>__<BASE32 of the name>`` instead (still decodable: base32
  is uppercase, an escaped name never continues ``__`` with an uppercase letter).
* **Metadata properties**: ``m_<escaped field>``; the record's own properties are ``sm_id``
  (the strataml id), ``sm_text`` (the text, BM25-indexed) and ``sm_meta`` (exact metadata).
* **Tenants**: the escaped tenant (``-`` kept) when it fits 64 characters, else ``_-`` +
  62 hex digits of its SHA-256 (an escaped name never contains ``_-``).
* **Object ids**: ``uuid5(NAMESPACE, id)``; the strataml id is stored in ``sm_id``. Tenants are
  separate shards, so the same id in two tenants is two objects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from typing import Final

__all__ = [
    "ID_PROPERTY",
    "META_PROPERTY",
    "NAMESPACE",
    "TEXT_PROPERTY",
    "class_name",
    "decode_class",
    "escape",
    "field_of_property",
    "object_uuid",
    "property_name",
    "tenant_name",
    "unescape",
]

#: The namespace of the deterministic object UUIDs (``uuid5(NAMESPACE, id)``).
NAMESPACE: Final = uuid.UUID("5c0b6f5e-6a0e-5c7e-9b1f-57a7a7a3e1d0")
ID_PROPERTY: Final = "sm_id"
TEXT_PROPERTY: Final = "sm_text"
META_PROPERTY: Final = "sm_meta"
FIELD_PREFIX: Final = "m_"
MAX_CLASS_CHARS: Final = 255
MAX_TENANT_CHARS: Final = 64
_PLAIN: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TENANT_PLAIN: Final = _PLAIN | {"-"}
_HEX: Final = frozenset("0123456789ABCDEF")


def escape(text: str, plain: frozenset[str] = _PLAIN) -> str:
    """The escaped form of ``text`` (see the module docstring)."""
    out: list[str] = []
    for ch in text:
        if ch in plain:
            out.append(ch)
        elif ch == "_":
            out.append("__")
        elif "A" <= ch <= "Z":
            out.append("_" + ch.lower())
        else:
            out.extend(f"_{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def unescape(text: str) -> str | None:
    """The inverse of :func:`escape`; ``None`` if ``text`` is not an escaped form."""
    raw = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "_":
            if ch in _PLAIN or ch == "-":
                raw += ch.encode()
                i += 1
                continue
            return None
        nxt = text[i + 1 : i + 2]
        if nxt == "_":
            raw += b"_"
            i += 2
        elif nxt and "a" <= nxt <= "z":
            raw += nxt.upper().encode()
            i += 2
        elif len(text) >= i + 3 and text[i + 1] in _HEX and text[i + 2] in _HEX:
            raw.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def class_name(prefix: str, name: str) -> str:
    """The Weaviate collection (or alias) name of strataml collection ``name``."""
    escaped = f"{prefix}_{escape(name)}"
    if len(escaped) <= MAX_CLASS_CHARS:
        return escaped
    encoded = base64.b32encode(name.encode()).decode().rstrip("=")
    return f"{prefix}__{encoded}"


_B32: Final = re.compile(r"^[A-Z2-7]+$")


def decode_class(prefix: str, cls: str) -> str | None:
    """The strataml name of Weaviate collection ``cls``; ``None`` if it is not one of ours
    (another prefix, or not an encoded name). Weaviate may capitalise the first letter."""
    head = f"{prefix}_"
    if not cls.startswith(head):
        return None
    rest = cls[len(head) :]
    if rest.startswith("_") and _B32.match(rest[1:]):
        padded = rest[1:] + "=" * (-len(rest[1:]) % 8)
        try:
            return base64.b32decode(padded).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
    return unescape(rest) if rest else None


def property_name(field: str) -> str:
    """The Weaviate property holding metadata field ``field``."""
    return FIELD_PREFIX + escape(field)


def field_of_property(prop: str) -> str | None:
    """The metadata field a property holds (``None`` for the record's own properties)."""
    if not prop.startswith(FIELD_PREFIX):
        return None
    return unescape(prop[len(FIELD_PREFIX) :])


def tenant_name(tenant: str) -> str:
    """The Weaviate tenant of strataml tenant ``tenant``."""
    escaped = escape(tenant, _TENANT_PLAIN)
    if len(escaped) <= MAX_TENANT_CHARS:
        return escaped
    return "_-" + hashlib.sha256(tenant.encode("utf-8", "surrogatepass")).hexdigest()[:62]


def object_uuid(record_id: str) -> uuid.UUID:
    """The deterministic Weaviate UUID of a record id."""
    return uuid.uuid5(NAMESPACE, record_id)
