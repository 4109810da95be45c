"""Making any JSON document survive a round trip through PostgreSQL's ``jsonb``.

``jsonb`` normalises what it stores, and two of its rules would change documents:

* **Numbers** become ``numeric``: ``1e+16`` (how orjson writes a large float) comes back as the
  integer ``10000000000000000``. :func:`to_jsonb` rewrites such numbers in plain decimal form
  with a fractional part (``10000000000000000.0``), which ``numeric`` keeps, so they read back
  as floats with the same value. Floats with negative exponents already keep a fraction.
* **NUL characters** (``\\u0000``) are rejected in strings and keys. :func:`to_jsonb` replaces
  each by the private-use character U+E000 followed by ``0`` (and a literal U+E000 by U+E000
  ``e``); :func:`from_jsonb` reverses it. Only documents holding U+E000 or NUL pay for this.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["from_jsonb", "has_nul", "to_jsonb"]

_ESC = "\ue000"
_ESC_B = _ESC.encode()
# a JSON string, or a number with a positive exponent (orjson writes "1e+16")
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?e\+\d+')
# \u0000 as an escape sequence (preceded by an even number of backslashes)
_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
_UNESC = re.compile(_ESC + "([0e])")


def has_nul(text: bytes) -> bool:
    """Whether JSON ``text`` holds a NUL character in a string or key."""
    return b"\\u0000" in text and _NUL.search(text) is not None


def _plain_number(m: re.Match[bytes]) -> bytes:
    token = m.group(0)
    if token.startswith(b'"'):
        return token
    plain = format(Decimal(token.decode()), "f")
    return (plain if "." in plain else plain + ".0").encode()


def to_jsonb(text: bytes) -> bytes:
    """JSON ``text`` (as orjson writes it) in a form ``jsonb`` stores without changing it."""
    # single-byte searches first (memchr): the common document has no '+', '\\' or 0xEE byte
    if b"+" in text and b"e+" in text:  # orjson writes positive exponents as "e+"
        text = _TOKEN.sub(_plain_number, text)
    if b"\xee" in text and _ESC_B in text:
        text = text.replace(_ESC_B, _ESC_B + b"e")
    if b"\\" in text and b"\\u0000" in text:
        text = _NUL.sub(lambda m: m.group(1) + _ESC_B + b"0", text)
    return text


def _unescape(value: Any) -> Any:
    if isinstance(value, str):
        if _ESC in value:
            return _UNESC.sub(lambda m: "\x00" if m.group(1) == "0" else _ESC, value)
        return value
    if isinstance(value, dict):
        return {_unescape(k): _unescape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    return value


def from_jsonb(text: str | bytes) -> Any:
    """The document stored by :func:`to_jsonb`, from ``jsonb``'s text output."""
    value = orjson.loads(text)
    raw = text.encode() if isinstance(text, str) else text
    if _ESC_B in raw:
        return _unescape(value)
    return value
