"""Point-in-time features: events -> one row per (entity, as_of)."""

from ._specs import Count, Derived, Sum
from ._table import feature_table, vocabulary

__all__ = ["Count", "Sum", "Derived", "feature_table", "vocabulary"]
