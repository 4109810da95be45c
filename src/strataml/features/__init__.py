"""Feature platform helpers that work across every FeatureStore/OnlineStore pair."""

from strataml.features.materialize import MaterializeReport, materialize

__all__ = ["MaterializeReport", "materialize"]
