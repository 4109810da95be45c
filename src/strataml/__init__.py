"""strataml: one data layer for the five stages of a production ML system.

>>> import strataml
>>> with strataml.open("local") as stack:          # doctest: +SKIP
...     stack.ingest.write("events", {"user_id": 1, "action": "click"})
"""

from strataml.errors import (
    AdapterNotInstalled,
    BackendError,
    CapabilityError,
    ConfigError,
    Conflict,
    DimensionMismatch,
    FilterError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    SkewError,
    StrataError,
    TransformError,
    Unavailable,
    Unsupported,
)
from strataml.models import FeatureView, Hit, VectorRecord
from strataml.stack import Stack, open_stack

open = open_stack

__version__ = "0.1.0"

__all__ = [
    "AdapterNotInstalled",
    "BackendError",
    "CapabilityError",
    "ConfigError",
    "Conflict",
    "DimensionMismatch",
    "FeatureView",
    "FilterError",
    "Hit",
    "InvalidInput",
    "LimitExceeded",
    "NotFound",
    "SchemaError",
    "SkewError",
    "Stack",
    "StrataError",
    "TransformError",
    "Unavailable",
    "Unsupported",
    "VectorRecord",
    "__version__",
    "open",
]
