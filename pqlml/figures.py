"""The figures pqlml draws belong to their caller: every plotting function returns a
matplotlib :class:`~matplotlib.figure.Figure` and, where it draws one panel, accepts
``ax=`` (it draws there and returns that axes' figure). None picks a backend, touches
pyplot's list of open figures or writes a file; a file is the caller's:
:func:`pqlml.outputs.save_figure` writes one atomically.

- :func:`panel`: the axes of a one-panel plot, the caller's ``ax`` or a new figure's.
- :func:`panels`: a new figure with a grid of ``n`` panels, at most ``columns`` a row.
- :class:`Figure`: the new figures. A matplotlib figure made without pyplot: nothing holds
  it once its caller lets go (a long run needs no ``plt.close``), ``plt.gcf()`` is left
  alone, and a notebook shows it once, where it is a cell's value (``fig = ...; fig``),
  as a PNG even before ``%matplotlib inline`` has run.

The plotting modules import this one inside their functions (``import pqlml`` and the CLI's
start stay free of matplotlib).

Examples
--------
>>> from pqlml.figures import panel, panels
>>> fig, ax = panel(size=(4, 3))
>>> _ = ax.plot([0, 1], [0, 1])
>>> fig.get_size_inches().tolist(), len(fig.axes)
([4.0, 3.0], 1)
>>> panel(ax)[0] is fig          # drawing into the caller's axes: its figure comes back
True
>>> fig._repr_png_()[:4]          # what a notebook shows
b'\\x89PNG'
>>> grid, axes = panels(5, size=(4, 3), columns=3)
>>> len(axes), grid.get_size_inches().tolist()    # 2 rows of 3, the sixth cell removed
(5, [12.0, 6.0])
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure as _Figure

__all__ = ["Figure", "panel", "panels"]


class Figure(_Figure):
    """A matplotlib figure that a notebook shows as a PNG (``_repr_png_``); where IPython's
    matplotlib support is on, its own PNG formatter is used instead (one image either way)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def panel(ax=None, *, size: tuple[float, float] = (6, 4.5)):
    """``(figure, axes)``: ``ax`` and its figure when given, else a new :class:`Figure` of
    ``size`` inches with one axes (its layout tightened when it is drawn)."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="tight")
    return fig, fig.add_subplot()


def panels(n: int, *, size: tuple[float, float] = (4.2, 3.4), columns: int = 3):
    """``(figure, axes)``: a new :class:`Figure` with ``n`` panels of ``size`` inches each,
    ``min(n, columns)`` a row, the grid's unused cells removed; ``axes`` a flat list of
    ``n``."""
    if n < 1:
        raise ValueError(f"A figure needs at least one panel. Got n={n}.")
    cols = min(n, columns)
    rows = -(-n // cols)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), layout="tight")
    grid = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in grid[n:]:
        ax.remove()
    return fig, list(grid[:n])
