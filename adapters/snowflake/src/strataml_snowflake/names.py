"""How strataml names map to Snowflake identifiers (the convention of Snowflake's SQLAlchemy
dialect).

Snowflake folds unquoted identifiers to uppercase; strataml names are usually lowercase. So:

* a strataml name that is all lowercase (letters, digits, ``_``, ``$``) is stored as the
  *uppercase* identifier, i.e. as Snowflake's case-insensitive name: table ``clicks`` is
  ``CLICKS``, column ``user_id`` is ``USER_ID``, and ``SELECT user_id FROM clicks`` finds them;
* any other name (``userId``, ``my-table``) is stored exactly as written (quoted, case-sensitive);
  write it double-quoted in SQL;
* reading back, an all-uppercase Snowflake name is reported lowercase (``USER_ID`` ->
  ``user_id``), any other name as it is.

Every identifier strataml renders is quoted (:func:`quote`), so names are never interpreted.
"""

from __future__ import annotations

import re

__all__ = ["from_sf", "qualified", "quote", "quote_name", "to_sf"]

_FOLDABLE = re.compile(r"^[a-z_][a-z0-9_$]*$")


def to_sf(name: str) -> str:
    """The Snowflake identifier (as stored) of a strataml name."""
    return name.upper() if _FOLDABLE.match(name) else name


def from_sf(identifier: str) -> str:
    """The strataml name of a Snowflake identifier (inverse of :func:`to_sf` on its range)."""
    lowered = identifier.lower()
    return lowered if identifier == identifier.upper() and _FOLDABLE.match(lowered) else identifier


def quote(identifier: str) -> str:
    """``identifier`` (as stored) double-quoted, embedded quotes doubled."""
    return '"' + identifier.replace('"', '""') + '"'


def quote_name(name: str) -> str:
    """A strataml name as a quoted Snowflake identifier: ``quote(to_sf(name))``."""
    return quote(to_sf(name))


def qualified(database: str, schema: str, name: str) -> str:
    """``"DB"."SCHEMA"."NAME"`` from identifiers as stored."""
    return f"{quote(database)}.{quote(schema)}.{quote(name)}"
