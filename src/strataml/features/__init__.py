"""The feature platform, over any FeatureStore/OnlineStore pair: materialization with
checkpoints, request-time transforms, serving with a skew guard, online/offline comparison,
additive schema evolution."""

from strataml.features.drift import (
    DriftConfig,
    DriftReport,
    DriftThresholds,
    FeatureDrift,
    drift,
    features_drift,
)
from strataml.features.materialize import (
    FINGERPRINT_COLUMN,
    MaterializeReport,
    MaterializeState,
    materialize,
    materialize_state,
    materialized_types,
    online_view_name,
)
from strataml.features.serving import CompareReport, FeatureServer, compare_online
from strataml.features.stats import (
    FeatureStats,
    StatsRepository,
    compute_stats,
    merge_stats,
    profile_view,
)
from strataml.features.transforms import Transform, apply_to_rows, apply_to_table, transform

__all__ = [
    "FINGERPRINT_COLUMN",
    "CompareReport",
    "DriftConfig",
    "DriftReport",
    "DriftThresholds",
    "FeatureDrift",
    "FeatureServer",
    "FeatureStats",
    "MaterializeReport",
    "MaterializeState",
    "StatsRepository",
    "Transform",
    "apply_to_rows",
    "apply_to_table",
    "compare_online",
    "compute_stats",
    "drift",
    "features_drift",
    "materialize",
    "materialize_state",
    "materialized_types",
    "merge_stats",
    "online_view_name",
    "profile_view",
    "transform",
]
