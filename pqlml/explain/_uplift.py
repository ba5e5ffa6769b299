"""Sentences for rows routed by a touch's estimated effect (the scores' ``uplift``).

Effects are probability units (``0.042``), said in percentage points of the chance of
converting with the 95% band. Each starts with ``(uplift)`` so that no cell begins with a
sign (a spreadsheet would run it as a formula).

Examples
--------
>>> uplift_reason(0.042, 0.011, 0.073)
'(uplift) a touch adds about +4.2 pts to the chance of converting (95% CI +1.1 to +7.3)'
>>> self_serve_reason(0.003, -0.01, 0.008)
'(uplift) likely to buy on its own: a touch adds little or nothing (about +0.3 pts, 95% CI -1.0 to +0.8), so self-serve'
"""

from __future__ import annotations

__all__ = ["uplift_reason", "self_serve_reason"]


def _pts(v: float) -> str:
    return f"{100 * float(v):+.1f}"


def uplift_reason(uplift: float, low: float, high: float) -> str:
    """Why a row was routed by its uplift: the effect and its band, in points."""
    verb = "adds about" if uplift >= 0 else "changes it by about"
    return (f"(uplift) a touch {verb} {_pts(uplift)} pts to the chance of converting "
            f"(95% CI {_pts(low)} to {_pts(high)})")


def self_serve_reason(uplift: float, low: float, high: float) -> str:
    """Why a worked tier's row goes to self-serve: a touch adds little."""
    return (f"(uplift) likely to buy on its own: a touch adds little or nothing (about "
            f"{_pts(uplift)} pts, 95% CI {_pts(low)} to {_pts(high)}), so self-serve")
