"""Point-in-time features: events -> one row per (entity, as_of)."""

from ._specs import Count, Derived
from ._table import feature_table, vocabulary

__all__ = ["Count", "Derived", "feature_table", "vocabulary"]
