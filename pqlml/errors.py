"""pqlml's own exceptions.

Every error a user can cause is one of these, with a message that names the
file, key or column, what was expected, what was found, and the fix.
They subclass :class:`ValueError` so callers that catch ``ValueError`` keep working.
"""

__all__ = ["PqlmlError", "ConfigError", "DataError", "TrackingError"]


class PqlmlError(ValueError):
    """Base class of every error pqlml raises on purpose."""


class ConfigError(PqlmlError):
    """The project config (TOML) has an unknown key or a bad value."""


class DataError(PqlmlError):
    """Input data does not fit the canonical tables (missing columns, bad values)."""


class TrackingError(PqlmlError):
    """The MLflow store could not be reached, was locked, or refused a write."""
