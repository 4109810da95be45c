"""The feature platform, over any FeatureStore/OnlineStore pair: materialization with
checkpoints, request-time transforms, serving with a skew guard, online/offline comparison,
additive schema evolution."""

from strataml.features.materialize import (
    FINGERPRINT_COLUMN,
    MaterializeReport,
    MaterializeState,
    materialize,
    materialize_state,
    online_view_name,
)
from strataml.features.serving import CompareReport, FeatureServer, compare_online
from strataml.features.transforms import Transform, apply_to_rows, apply_to_table, transform

__all__ = [
    "FINGERPRINT_COLUMN",
    "CompareReport",
    "FeatureServer",
    "MaterializeReport",
    "MaterializeState",
    "Transform",
    "apply_to_rows",
    "apply_to_table",
    "compare_online",
    "materialize",
    "materialize_state",
    "online_view_name",
    "transform",
]
