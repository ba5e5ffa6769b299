"""report.html of discover, backtest and score: well-formed, self-contained, every cell
escaped, its key numbers equal to the files the command wrote (read back independently),
and rendered by a real headless browser without a console message."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from html_checks import (assert_renders, load_in_chromium, needs_chromium, parse, tables,
                         text_of, well_formed)
from pqlml import runner
from pqlml.discover import discovery_page
from pqlml.figures import panel
from pqlml.outputs import save_figure
from pqlml.report import Page, Section
from pqlml.score import Scores
from pqlml.score_report import score_page
from simulated import company_config

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def made(shared_company, tmp_path_factory):
    """One small company through discover, backtest (untracked), train and score (~27 s on
    an idle core: discover 13, train and score 10, backtest 3)."""
    out = tmp_path_factory.mktemp("report")
    config = company_config(shared_company(n_accounts=1_500, seed=4, months=12), out / "company",
                            "[model]\ntest_periods = 2\nbootstrap = 20\n")
    project = runner.validate(config, preflight=False).project
    found = runner.discover(project, out / "signals", outcome="hand_raise").found
    runner.backtest(project, out / "backtest", kind="logistic", track=False)
    runner.train(project, out / "model.skops", track=False)
    scored = runner.score(project, out / "model.skops", out=out / "scores")
    return {"root": out, "found": found, "scored": scored}


def _hostile_figure(tmp_path):
    fig, ax = panel(size=(3, 2))
    ax.plot([0, 1], [1, 0])
    return fig, save_figure(fig, tmp_path / "line.png")


def test_page_escapes_every_text_and_inlines_its_images(tmp_path):
    fig, png = _hostile_figure(tmp_path)
    page = Page(HOSTILE, {HOSTILE: HOSTILE}, [HOSTILE], [Section(HOSTILE, [
        HOSTILE, pd.DataFrame({"event": [HOSTILE, None], "n": [1, 2]}), fig, png])],
                subtitle=HOSTILE)
    path = page.write(tmp_path / "report.html")
    text = path.read_text()
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    root = well_formed(path)
    assert text_of(root).count(HOSTILE) == 9     # title x2, subtitle, number x2, how, h2, p, cell
    assert tables(root) == [[["event", "n"], [HOSTILE, "1"], ["", "2"]]]
    assert len(list(root.iter("{http://www.w3.org/1999/xhtml}img"))) == 2
    with pytest.raises(TypeError, match="report section holds text"):
        Page("x", sections=[Section("s", [object()])]).html()


@pytest.mark.slow           # the shared company: ~27 s alone, once
def test_discover_report_leads_with_the_top_signals_of_its_tables(made):
    folder = made["root"] / "signals"
    root = well_formed(folder / "report.html")
    best = pd.read_csv(folder / "signals.best.csv")
    top = tables(root)[0]
    assert top[0][:2] == ["signal", "best rule"]
    expected = [[r.signal, r.rule, f"{r.lift:.2f}x", f"{r.q_value:.2g}"]
                for r in best.head(15).itertuples()]
    assert [[row[0], row[1], row[4], row[6]] for row in top[1:]] == expected
    kept = best[(best.q_value <= 0.05) & ~best.adjacent]
    words = text_of(root)
    assert f"{best.signal.nunique():,} signals scanned" in words
    assert f"{kept.lift.iloc[0]:.2f}x lift top signal: {kept.rule.iloc[0]}" in words
    assert words.index("How to read this") < words.index("Top signals for")


@pytest.mark.slow           # the shared company: ~27 s alone, once
def test_a_hostile_event_name_is_escaped_on_the_discover_page(made, tmp_path):
    found = made["found"]
    best = found.best.copy()
    best.loc[0, ["signal", "rule"]] = [HOSTILE, f"{HOSTILE} >= 2 in 7d"]
    path = discovery_page(dataclasses.replace(found, best=best)).write(tmp_path / "report.html")
    assert "<script" not in path.read_text()
    assert tables(parse(path))[0][1][:2] == [HOSTILE, f"{HOSTILE} >= 2 in 7d"]


@pytest.mark.slow           # the shared company: ~27 s alone, once
def test_backtest_report_holds_the_metrics_with_their_cis(made):
    folder = made["root"] / "backtest"
    root = well_formed(folder / "report.html")
    m = json.loads((folder / "metrics.json").read_text())
    words = text_of(root)
    for name in ("model", "rules", "generic_logistic", "rfm_logistic"):
        auc, (lo, hi) = m[name]["roc_auc"], m[name]["roc_auc_ci"]
        assert f"{auc:.3f} [{lo:.3f}, {hi:.3f}] {name.replace('_', ' ')} ROC-AUC" in words
    captured = f"{m['model']['converters_captured']:,} converters captured by the model"
    assert captured in words
    table = tables(root)[0]
    assert table[0][:3] == ["", "model", "rules"]
    assert table[6][0] == "converters_captured"
    assert table[6][1].startswith(f"{m['model']['converters_captured']:,} [")
    assert len(list(root.iter("{http://www.w3.org/1999/xhtml}img"))) == 3    # gains, calibration, tiers
    assert len(tables(root)[-1]) == len(m["folds"]) + 1                    # per fold


@pytest.mark.slow           # the shared company: ~27 s alone, once
def test_score_report_counts_tiers_and_not_scored_as_the_files(made):
    folder = made["root"] / "scores"
    assert [p.name for p in made["scored"].written] == ["scores.csv", "not_scored.csv",
                                                        "report.html"]
    root = well_formed(folder / "report.html")
    scores = pd.read_csv(folder / "scores.csv", keep_default_na=False)
    gone = pd.read_csv(folder / "not_scored.csv")
    per_tier, top, reasons = tables(root)
    counts = scores.tier.value_counts()
    assert {row[0]: int(row[1].replace(",", "")) for row in per_tier[1:]} == {
        t: int(counts.get(t, 0)) for t in ("tier_1", "tier_2", "tier_3", "self_serve")}
    assert [row[0] for row in top[1:]] == list(scores.account_id.head(25))
    assert [row[5] for row in top[1:]] == list(scores.reason_1.head(25))
    assert {row[0]: int(row[1]) for row in reasons[1:]} == gone.code.value_counts().to_dict()
    assert f"{len(scores):,} accounts scored" in text_of(root)


@pytest.mark.slow           # the shared company: ~27 s alone, once
def test_a_hostile_domain_or_reason_is_escaped_on_the_score_page(made, tmp_path):
    scored = made["scored"]
    scores = scored.scores.copy()
    scores.loc[0, ["domain", "reason_1"]] = [HOSTILE, f"(+) {HOSTILE} twice"]
    page = score_page(Scores(scores, scored.not_scored, HOSTILE))
    path = page.write(tmp_path / "report.html")
    assert "<script" not in path.read_text()
    assert tables(parse(path))[1][1][1] == HOSTILE


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_every_report_renders_in_headless_chromium(made, tmp_path):
    for folder in ("signals", "backtest", "scores"):
        assert_renders(made["root"] / folder / "report.html", tmp_path / f"{folder}.png")


@pytest.mark.browser
@needs_chromium
def test_the_browser_check_sees_a_console_error(tmp_path):
    """The check above could fail: a page whose script throws is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>nope();</script></body></html>")
    console, _ = load_in_chromium(page, tmp_path / "broken.png")
    assert any("nope is not defined" in line for line in console)
