"""Every plotting function returns a Figure, draws into ``ax=``, leaves pyplot and the
backend alone (checked in a real Jupyter kernel), and the three fixed plots: the rates
grid, the heatmap's centred scale with small cells masked, the calibration axes."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).parent))
import plot_inputs  # noqa: E402

from pqlml.backtest import calibration_plot, gains_plot, tier_plot  # noqa: E402
from pqlml.discover import MIN_CELL_SUPPORT, heatmap, top_signals_chart  # noqa: E402
from pqlml.drift import plot_drift  # noqa: E402
from pqlml.outputs import save_figure  # noqa: E402
from pqlml.rules import plot_rates  # noqa: E402


@pytest.fixture(scope="module")
def figures():
    return plot_inputs.call_every_plot()


def test_every_plotting_function_returns_a_figure_outside_pyplot(figures):
    import matplotlib.pyplot as plt

    assert set(figures) == plot_inputs.plotting_functions()       # none left out
    assert all(isinstance(f, Figure) and f.axes for f in figures.values())
    assert plt.get_fignums() == []          # nothing registered: no plt.close needed, no leak
    assert all(f.canvas.manager is None for f in figures.values())


def test_one_panel_plots_draw_into_the_callers_axes():
    rows = plot_inputs.backtest_rows()
    calls = [lambda ax: gains_plot(rows, "conversion", ax=ax),
             lambda ax: calibration_plot(rows, "conversion", ax=ax),
             lambda ax: tier_plot(plot_inputs.tier_rows(rows), "conversion", ax=ax),
             lambda ax: heatmap(plot_inputs.heatmap_rows(), outcome="x", ax=ax),
             lambda ax: top_signals_chart(plot_inputs.best_rules(), outcome="x", ax=ax),
             lambda ax: plot_drift(plot_inputs.drift_rows(), threshold=0.25, warn=0.1, ax=ax)]
    for call in calls:
        mine = Figure()
        left, right = mine.subplots(1, 2)
        assert call(right) is mine
        drawn = right.lines or right.images or right.patches or right.collections
        assert drawn and not (left.lines or left.images or left.patches or left.collections)


def test_save_figure_writes_a_png_at_the_chosen_dpi(figures, tmp_path):
    fig = figures["pqlml.backtest._plots:tier_plot"]
    path = save_figure(fig, tmp_path / "tiers.png", dpi=50)
    assert path.read_bytes()[:4] == b"\x89PNG"
    height, width = matplotlib.image.imread(path).shape[:2]
    assert (width, height) == tuple(np.round(fig.get_size_inches() * 50).astype(int))
    assert [p.name for p in tmp_path.iterdir()] == ["tiers.png"]        # no temporary left


@pytest.mark.parametrize("kinds, shape", [(6, (2, 3)), (4, (2, 3)), (2, (1, 2)), (1, (1, 1))])
def test_rates_chart_is_a_grid_of_readable_panels(kinds, shape, tmp_path):
    fig = plot_rates(plot_inputs.rate_rows(kinds))
    assert len(fig.axes) == kinds
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes} == {shape}
    assert [ax.get_title() for ax in fig.axes] == [f"kind {k}" for k in range(kinds)]
    height, width = matplotlib.image.imread(save_figure(fig, tmp_path / "r.png")).shape[:2]
    # the chart: 6 panels in one row, 3024 x 456 px; now at most 3 a row
    assert width <= 3 * 4.2 * 110 + 1 and height >= 3.4 * 110 * shape[0] - 1
    if kinds == 6:
        assert (width, height) == (1386, 748)


def test_heatmap_scale_is_centred_at_one_and_small_cells_are_masked():
    rows = plot_inputs.heatmap_rows()
    ax = heatmap(rows, outcome="hand_raise").axes[0]
    image = ax.images[0]
    assert isinstance(image.norm, TwoSlopeNorm) and image.norm.vcenter == 1.0
    # the scale, computed here from the table: the largest lift or inverse lift of the cells
    # with n >= 30 (never the n = 2 cell's 20x nor the n = 29 cell's 6x), at least 2
    kept = rows[rows.support >= MIN_CELL_SUPPORT].lift
    span = max(2.0, kept.max(), (1 / kept).max())
    assert span == 3.5
    assert image.norm.vmax == pytest.approx(span) and image.norm.vmin == pytest.approx(1 / span)
    cells = np.ma.getmaskarray(image.get_array())
    grid = rows.pivot_table(index="at_least", columns="days", values="support")
    assert (cells == (grid.to_numpy() < MIN_CELL_SUPPORT)).all() and cells.sum() == 2
    assert image.cmap.get_bad()[:3] == pytest.approx(matplotlib.colors.to_rgb("#d9d9d9"))
    texts = [t.get_text() for t in ax.texts]
    assert "20.0x\nn=2" in texts                        # still printed, in grey
    assert "grey: n < 30" in ax.get_title()
    # no cell masked (a threshold of 1), every cell masked, and a scale then at its floor of 2
    none = heatmap(rows, outcome="x", min_support=1).axes[0].images[0]
    assert not np.ma.getmaskarray(none.get_array()).any() and none.norm.vmax == 20.0
    everything = heatmap(rows, outcome="x", min_support=10_000).axes[0].images[0]
    assert np.ma.getmaskarray(everything.get_array()).all() and everything.norm.vmax == 2.0


def test_calibration_axes_fit_the_binned_data():
    rows = plot_inputs.backtest_rows()
    ax = calibration_plot(rows, "conversion").axes[0]
    # the bins, computed here: ten equal-count bins of each score, sorted
    largest = 0.0
    for col in ("p_model", "p_oracle"):
        order = np.argsort(rows[col].to_numpy(), kind="stable")
        for part in np.array_split(order, 10):
            largest = max(largest, rows[col].iloc[part].mean(), rows.conversion.iloc[part].mean())
    assert ax.get_xlim() == ax.get_ylim()
    low, top = ax.get_xlim()
    assert low == 0 and largest < top <= 1.1 * largest
    assert rows.p_model.max() < 0.36 and top < 0.36      # the old axis ran to the raw maximum
    assert ax.get_aspect() == 1.0
    for line in ax.lines[:-1]:                           # every binned point inside the panel
        x, y = line.get_data()
        assert (np.asarray(x) <= top).all() and (np.asarray(y) <= top).all()


def test_in_a_jupyter_kernel_the_backend_is_unchanged_and_figures_show_inline():
    """A real kernel (ipykernel, through nbclient): pqlml's figures show once as PNGs, the
    inline backend is still the backend after every plotting function, and pyplot's own
    figure (``plt.gcf()``) still renders inline in a later cell."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        f"import sys, matplotlib\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import plot_inputs\nfirst = matplotlib.get_backend()\n"
        "figs = plot_inputs.call_every_plot()\nprint(first, '->', matplotlib.get_backend())",
        'figs["pqlml.discover._plots:heatmap"]',          # before any %matplotlib: _repr_png_
        "%matplotlib inline\nbefore = matplotlib.get_backend()\n"
        "figs = plot_inputs.call_every_plot()\nprint(before, '->', matplotlib.get_backend())",
        "import matplotlib.pyplot as plt\nplt.gcf().gca().plot([0, 1], [1, 0]);",
        'figs["pqlml.rules._report:plot_rates"]',
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outs = [c.outputs for c in nb.cells]

    def images(out):
        return [o.output_type for o in out if "image/png" in o.get("data", {})]

    assert images(outs[0]) == []                         # drawn, not shown: the caller's
    for out in (outs[0], outs[2]):                       # the backend before -> after them all
        before, after = out[0].text.strip().split(" -> ")
        assert before == after and "inline" in after, out[0].text
    assert images(outs[1]) == ["execute_result"]          # shown once, as a PNG
    assert images(outs[3]) == ["display_data"]            # plt.gcf() still renders inline
    assert images(outs[4]) == ["execute_result"]          # once: not also as an open figure
