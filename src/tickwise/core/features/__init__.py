"""Features: one calculator for the batch trainer and the live stream (see docs/features.md)."""

from tickwise.core.features.calculator import FeatureCalculator, FeatureSpec, FeatureStream, StreamState

__all__ = ["FeatureCalculator", "FeatureSpec", "FeatureStream", "StreamState"]
