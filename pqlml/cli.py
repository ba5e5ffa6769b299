"""``pqlml`` command line: one sub-command per pipeline stage.

Each command parses its arguments, runs the command's function in :mod:`pqlml.runner` (which
checks the outputs, opens the project, runs the stage, writes and tracks) and renders the
result on the terminal.

Every command that works on a project takes ``--config``; ``--out`` is a folder for the
commands that write several files and a file for those that write one; ``--model`` is a model
file or a registry URI everywhere; dates are ``YYYY-MM-DD``. A bad option value, and every
error pqlml raises on purpose, is one clear message with exit code 2, never a traceback.
``--quiet`` leaves only errors; dependencies' warnings stay off the terminal
(:func:`pqlml.terminal.dependency_warnings_hidden`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from .crm import FORMATS
from .errors import PqlmlError
from .labels import OUTCOMES
from .terminal import consoles, periods, status, step

__all__ = ["main"]


def _simulate(args) -> None:
    from .simulate import simulate

    console, _ = consoles(args.quiet)
    result = simulate(args.accounts, args.seed, args.out, months=args.months,
                      progress=not args.quiet, chunk_accounts=args.chunk_accounts,
                      randomised_share=args.randomised_share)
    counts = ", ".join(f"{v:,} {k}" for k, v in result.counts.items())
    console.print(f"wrote {counts} to {result.out}; truth in {result.out / 'truth'}; "
                  f"config {result.config}")
    if args.export:
        from .simulate._export import export_company
        with step(console, f"exporting as {args.export}"):
            config = export_company(result.out, args.export, result.out / args.export)
        console.print(f"exported as {args.export} to {config.parent}; config {config}")


def _init(args) -> None:
    from . import runner

    console, _ = consoles(args.quiet)
    with step(console, "inspecting the files and drafting the config"):
        result = runner.init(args.dir, args.events, users=args.users, accounts=args.accounts,
                             outcomes=args.outcomes)
    path = result.write(force=args.force)
    for line in result.guesses + result.fill_ins:
        console.print(f"  {line.strip()}", highlight=False, markup=False)
    if result.figures.problem:
        console.print("[yellow]the data did not open with these guesses: "
                      f"{result.figures.problem}", highlight=False)
    console.print(f"wrote {path}: {len(result.guesses)} guesses to check (lines marked "
                  f"'# guess:'), {len(result.fill_ins)} to fill in ('# fill in:'). "
                  f"Next: pqlml validate --config {path}", highlight=False)


def _validate(args) -> None:
    from . import runner

    # the whole opening: tables, identity routes and the cross-table checks (enrichment
    # domains, sign-ups of unknown users), as every later stage sees them; then what the
    # later stages would refuse: schedule, horizon, outcomes, rules
    info, console = consoles(args.quiet)
    with step(info, "opening and checking the tables"):
        result = runner.validate(args.config)
    report, checks = result.project.report, result.checks
    for name, rows in result.counts.items():
        console.print(f"{name}: {rows:,} rows")
    console.print("\n".join(report.render()) if len(report) else "no findings", markup=False)
    for line in checks.facts:
        console.print(f"ok: {line}", markup=False)
    for line in checks.warnings:
        console.print(f"warning: {line}", markup=False)
    checks.raise_if_any()


def _config(args):
    """The command's config, read (cheaply) before any work."""
    from .config import load_config
    return load_config(args.config)


def _refreshes(console, project) -> None:
    """One line per feature table of one as_of: built incrementally or in full, and why."""
    for r in project.refreshes:
        console.print(r.line(), markup=False)


def _full_option(s) -> None:
    s.add_argument("--full", action="store_true",
                   help="build the features from the whole history, not incrementally from "
                        "the state kept beside the cache after the last run")


def _features(args) -> None:
    from . import runner
    from .refresh import full_build

    console, _ = consoles(args.quiet)
    with full_build(args.full):
        result = runner.features(args.config, args.out, as_of=args.as_of, entity=args.entity,
                                 status=status(console), stream=args.stream)
    frame, done = result.frame, result.streamed
    for line in result.project.report.render():
        console.print(f"  {line}", markup=False)
    _refreshes(console, result.project)
    rows, n, dates = ((len(frame), frame.shape[1] - 2, frame.as_of.nunique()) if done is None
                      else (done.rows, done.features, len(done.dates or ())))
    console.print(f"wrote {rows:,} rows x {n} features ({dates} as_of dates) to {args.out}"
                  + (" (streamed)" if done is not None else ""))


def _rules(args) -> None:
    from rich.table import Table

    from . import runner
    from .rules import REPORT_FILES

    console, shown = consoles(args.quiet)
    rates = runner.rules(args.config, args.out, as_of=args.as_of,
                         status=status(console)).rates
    pooled = rates[rates.period == "all"]
    table = Table(title="pooled over all periods: conversion within the horizon (95% Wilson)")
    for col in ("kind", "group", "entities", "conversions", "rate", "95% CI"):
        table.add_column(col, justify="left" if col in ("kind", "group") else "right")
    for r in pooled.itertuples():
        ci = "" if r.entities == 0 else f"{r.conversion_low:.1%}-{r.conversion_high:.1%}"
        rate = "empty" if r.entities == 0 else f"{r.conversion_rate:.1%}"
        table.add_row(r.kind, r.group, f"{r.entities:,}", f"{r.conversion:,}", rate, ci)
    shown.print(table)
    empty = pooled[pooled.entities == 0]
    if len(empty):
        console.print("[yellow]empty groups (no labelled account-month): "
                      + ", ".join(f"{r.kind} {r.group}" for r in empty.itertuples()))
    console.print(f"wrote {', '.join(REPORT_FILES)} to {args.out}")


def _discover(args) -> None:
    import pandas as pd
    from rich.table import Table

    from . import runner

    console, shown = consoles(args.quiet)
    result = runner.discover(args.config, args.out, outcome=args.outcome, as_of=args.as_of,
                             status=status(console))
    found, plots = result.found, result.plots
    table = Table(title=f"best rule per signal for {found.outcome} ({found.rows:,} labelled "
                        f"snapshots, {found.positives:,} positive)")
    for col in ("rule", "support", "rate with", "lift", "phi", "q", "adjacent"):
        table.add_column(col, justify="left" if col == "rule" else "right")
    for r in found.best.head(args.top).itertuples():
        table.add_row(r.rule, f"{r.support:,}", f"{r.rate_with:.1%}", f"{r.lift:.1f}x",
                      f"{r.phi:.3f}", f"{r.q_value:.1g}", "yes" if r.adjacent else "")
    shown.print(table)
    gone = found.adjusted[found.adjusted.vanishes].drop_duplicates("group")
    if len(gone):
        console.print("significant alone, not once size, activity and the others are "
                      "controlled: " + ", ".join(
                          r.group + ("" if pd.isna(r.absorbed_by) else
                                     f" (absorbed by {r.absorbed_by})")
                          for r in gone.itertuples()))
    for note in found.notes:
        console.print(f"[yellow]{note}")
    if len(found.skipped):
        console.print("not scanned: " + ", ".join(f"{r.feature} ({r.reason})"
                                                  for r in found.skipped.itertuples()))
    console.print(f"wrote {', '.join(p.name for p in result.written)} and {plots.name}/ to "
                  f"{args.out}")


def _tracked(console, result) -> None:
    """The MLflow run a command logged, if it did."""
    if result.run_id is not None:
        console.print(f"MLflow run {result.run_id} in {result.store}")


def _backtest(args) -> None:
    from . import runner
    from .backtest import REPORT_FILES

    console, shown = consoles(args.quiet)
    with periods(console, "backtest", "fold {i}/{n}, test {as_of}") as advance:
        result = runner.backtest(args.config, args.out, kind=args.kind, outcome=args.outcome,
                                 track=not args.no_track, progress=advance, buyers=args.buyers)
    _tracked(console, result)
    metrics = result.metrics
    m, b = metrics["model"], metrics["best_single_rule"]
    found = {"conversion": "converters", "hand_raise": "hand-raisers",
             "accepted": "accepted leads"}[metrics["outcome"]]
    volume = "the rules' volume" if "rules" in metrics else "sales capacity"
    rules = (f"rules {metrics['rules']['converters_captured']:,}, " if "rules" in metrics
             else "")
    lines = [f"model ({metrics['kind']}): ROC-AUC {m['roc_auc']:.3f} "
             f"[{m['roc_auc_ci'][0]:.3f}, {m['roc_auc_ci'][1]:.3f}], ECE {m['ece']:.4f}",
             f"at {volume} ({m['volume']:,} touches over {len(metrics['folds'])} periods): "
             f"model {m['converters_captured']:,} {found}, {rules}"
             f"best single signal {b['converters_captured']:,}"]
    if "activation_engagement" in metrics:
        lines.append("activated, then ranked by engagement: "
                     f"{metrics['activation_engagement']['converters_captured']:,} {found}")
    if "oracle" in metrics:
        lines.append(f"oracle (the simulator's truth): ROC-AUC {metrics['oracle']['roc_auc']:.3f}, "
                     f"{metrics['oracle']['converters_captured']:,} {found}")
    shown.print("\n".join(lines))
    for note in metrics.get("notes", []):
        console.print(f"[yellow]{note}")
    if result.buyers is not None:
        b = result.buyers
        shown.print(f"who to call: top-1 contact {b['top1_model']:.1%} against title "
                    f"{b['top1_title']:.1%} and most active {b['top1_active']:.1%}; "
                    f"buyer_in_product ECE {b['ece_buyer_in_product']:.3f}")
    console.print(f"wrote {', '.join(REPORT_FILES)} to {args.out}")


def _train(args) -> None:
    from . import runner

    console, _ = consoles(args.quiet)
    result = runner.train(args.config, args.out, kind=args.kind, outcome=args.outcome,
                          track=not args.no_track, status=status(console))
    if result.registered is not None:
        version, alias = result.registered
        console.print(f"MLflow run {result.run_id} in {result.store}; registered "
                      f"{result.project.config.model.registered_name} version {version} as "
                      f"@{alias}")
    model = result.model
    info = model.trained_on
    console.print(f"trained a {model.kind} model for {model.outcome} on {info['rows']:,} snapshots "
                  f"({info['positives']:,} positive, {info['as_of_first']} .. {info['as_of_last']}), "
                  f"{len(model.features)} features; saved {args.out}")
    from .uplift._scoring import described
    console.print(described(info.get("uplift") or {}))


def _retrain(args) -> None:
    from . import runner

    console, shown = consoles(args.quiet)
    with periods(console, "retrain", "period {i}/{n}, {as_of}") as advance:
        result = runner.retrain(args.config, args.out, progress=advance)
    _tracked(console, result)
    decision, registered = result.decision, result.registered
    word = {"promoted": "PROMOTED", "first_champion": "FIRST CHAMPION", "kept": "KEPT the champion",
            "failed": "FAILED", "not_compared": "NOT COMPARED"}[decision.action]
    shown.print(f"retrain: {word}: {decision.reason}")
    if registered:
        console.print(f"registered {result.project.config.model.registered_name} version "
                      f"{registered[0]} as @{registered[1]}; wrote {args.out / 'model.skops'} "
                      "and decision.json")
    if decision.action == "failed":
        raise PqlmlError(f"retraining failed, the champion was kept: {decision.reason}")


def _drift(args) -> None:
    from rich.table import Table

    from . import runner
    from .drift import DRIFT_FILES

    console, shown = consoles(args.quiet)
    result = runner.drift(args.config, args.out, model=args.model, as_of=args.as_of,
                          track=not args.no_track, status=status(console))
    _tracked(console, result)
    table, summary, cfg = result.table, result.summary, result.project.config
    grid = Table(title=f"Drift of {summary['model']}: {summary['reference'][0]} .. "
                       f"{summary['reference'][1]} vs {summary['as_of']}")
    for col in ("feature", "psi", "status", "reference_mean", "current_mean"):
        grid.add_column(col, justify="left" if col in ("feature", "status") else "right")
    for r in table[table.status != "stable"].head(args.top).itertuples():
        grid.add_row(r.feature, f"{r.psi:.3f}", r.status, f"{r.reference_mean:.3g}",
                     f"{r.current_mean:.3g}")
    shown.print(grid)
    shown.print(f"score PSI {summary['psi_score']:.3f}; {summary['features_flagged']} feature(s) "
                f"over {cfg.drift.threshold:g}, {summary['features_moderate']} moderate")
    console.print(f"wrote {', '.join(DRIFT_FILES)} to {args.out}")


def _feedback(args) -> None:
    from rich.table import Table

    from . import runner

    console, _ = consoles(args.quiet)
    result = runner.feedback(args.config, args.out, model=args.model,
                             status=status(console))
    fb, plot = result.feedback, result.plot
    grid = Table("kind", "group", "dispositions", "accepted", "95% CI",
                 title=f"acceptance by sales of {len(fb.leads):,} leads ({plot})")
    for r in fb.rates[fb.rates.period == "all"].itertuples():
        grid.add_row(r.kind, r.group, f"{r.entities:,}",
                     "-" if not r.entities else f"{r.accepted_rate:.0%}",
                     "" if not r.entities else f"{r.accepted_low:.0%}-{r.accepted_high:.0%}")
    console.print(grid)
    if len(fb.reasons):
        grid = Table("tier", "rejection reason", "rejections", "share of the tier's",
                     title="most common rejection reasons per tier")
        for r in fb.reasons.itertuples():
            grid.add_row(r.tier, r.reason, f"{r.rejections:,}", f"{r.share:.0%}")
        console.print(grid)
    if len(fb.not_attached):
        console.print(f"{len(fb.not_attached):,} of {fb.dispositions:,} dispositions fit no snapshot "
                      f"(listed with the reason in {args.out / 'not_attached.csv'}): " +
                      ", ".join(f"{n:,} {w}" for w, n in fb.not_attached.why.value_counts().items()))


def _engagement_weights(args) -> None:
    import numpy as np
    from rich.table import Table

    from . import runner

    console, _ = consoles(args.quiet)
    result = runner.engagement_weights(args.config, args.out, until=args.until,
                                       outcome=args.outcome, status=status(console))
    table = result.table
    a = table.attrs
    grid = Table("event", "weight", "95% CI", "p", title=(
        f"engagement weights for {a['outcome']}: {a['rows']:,} snapshots ({a['positives']:,} "
        f"positive) whose labels closed by {a['until']}, half-life {a['half_life_days']:g} days"))
    for r in table.itertuples():
        grid.add_row(r.event, f"{r.weight:+.4g}",
                     "" if np.isnan(r.ci_low) else f"{r.ci_low:+.3g} .. {r.ci_high:+.3g}",
                     "not seen" if np.isnan(r.p_value) else f"{r.p_value:.1g}")
    console.print(grid)
    if not args.quiet:
        print(result.toml, end="")
    console.print(f"written to {args.out}; paste the block above into the config to use them")


def _score(args) -> None:
    from rich.table import Table

    from . import runner
    from .refresh import full_build

    console, shown = consoles(args.quiet)
    with full_build(args.full):
        result = runner.score(args.config, args.model, out=args.out, format=args.format,
                              to_table=args.to_table, as_of=args.as_of, status=status(console),
                              batch_rows=args.batch_rows)
    _refreshes(console, result.project)
    scores, gone, version = result.scores, result.not_scored, result.version
    key = scores.columns[0]
    if args.to_table:
        where = (f"tables {args.to_table} and {args.to_table}_not_scored in "
                 f"{result.project.config.data.connection}")
    if args.out:
        where = " and ".join(map(str, result.written)) + (f"; {where}" if args.to_table else "")
    counts = gone.code.value_counts()
    as_of = scores.as_of.iloc[0].date() if len(scores) else args.as_of
    table = Table(title=f"Tier 1 at {as_of} ({version})")
    for col in (key, "probability", "reason_1", "reason_2"):
        table.add_column(col)
    for r in scores[scores.tier == "tier_1"].head(args.top).itertuples():
        table.add_row(str(getattr(r, key)), f"{r.probability:.1%}", r.reason_1, r.reason_2)
    shown.print(table)
    tiers = scores.tier.value_counts()
    shown.print(f"scored {len(scores):,} {key.split('_')[0]}s ("
                    + ", ".join(f"{t} {tiers.get(t, 0):,}" for t in
                                ("tier_1", "tier_2", "tier_3", "self_serve")) + f"); not scored "
                    f"{len(gone):,}" + ("" if gone.empty else ": " + ", ".join(
                        f"{n:,} {r}" for r, n in counts.items())))
    console.print(f"wrote {where}")


def _uplift(args) -> None:
    from . import runner

    console, shown = consoles(args.quiet)
    with periods(console, "uplift", "step {i}/{n}, test {as_of}") as advance:
        result = runner.uplift(args.config, args.out, outcome=args.outcome,
                               track=not args.no_track, progress=advance)
    _tracked(console, result)
    m = result.metrics
    lines = [f"whom a call changes ({m['learner']}-learner, {len(m['folds'])} test periods, "
             f"{m['capacity']:,} touches a period), incremental conversions per 100 touches:"]
    for name, block in m["policies"].items():
        if isinstance(block, dict):
            ci = block.get("estimated_per_100_ci", [float("nan")] * 2)
            true = f", true {block['true_per_100']:.2f}" if "true_per_100" in block else ""
            lines.append(f"  by {name}: estimated {block['estimated_per_100']:.2f} "
                         f"[{ci[0]:.2f}, {ci[1]:.2f}]{true}")
    if "uplift" in m["qini"]:
        q = m["qini"]["uplift"]
        lines.append(f"Qini coefficient (uplift, {m['qini_rows']} rows): {q['coefficient']:.4f} "
                     f"[{q['coefficient_ci'][0]:.4f}, {q['coefficient_ci'][1]:.4f}]")
    shown.print("\n".join(lines))
    for seg, why in m["unidentifiable"].items():
        console.print(f"[yellow]unidentifiable, not ranked: {seg}: {why}")


def _buyers(args) -> None:
    from rich.table import Table

    from . import runner

    console, shown = consoles(args.quiet)
    result = runner.buyers(args.config, args.out, test_periods=args.test_periods,
                           status=status(console))
    m, seg = result.evaluation.metrics, result.evaluation.segments
    table = Table(title=f"who to call: {m['accounts']:,} qualified accounts over "
                        f"{len(result.evaluation.test_dates)} test periods, the buyer a product "
                        f"user in {m['accounts_buyer_inside']:,}")
    for col in ("segment", "top-1 model", "top-1 title", "top-1 most active", "top-3 model",
                "buyer inside (mean p)", "ECE"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for r in [{"segment": "all", **m}, *seg.to_dict("records")]:
        table.add_row(r["segment"], f"{r['top1_model']:.1%}", f"{r['top1_title']:.1%}",
                      f"{r['top1_active']:.1%}", f"{r['top3_model']:.1%}",
                      f"{r['share_buyer_inside']:.1%} ({r['mean_buyer_in_product']:.1%})",
                      f"{r['ece_buyer_in_product']:.3f}")
    shown.print(table)
    ci = m.get("ci", {})
    lines = [f"top-1 contact accuracy {m['top1_model']:.1%} "
             f"[{ci['top1_model'][0]:.1%}, {ci['top1_model'][1]:.1%}] = "
             f"{m['top1_ratio_to_best_baseline']:.2f}x the better baseline "
             f"[{ci['top1_ratio_to_best_baseline'][0]:.2f}, "
             f"{ci['top1_ratio_to_best_baseline'][1]:.2f}]" if ci else
             f"top-1 contact accuracy {m['top1_model']:.1%}",
             f"routed to find an outside buyer (buyer_in_product < 0.5): {m['pqa_routed']:,} "
             f"accounts, the buyer outside in {m['pqa_buyer_outside']:.1%}"]
    if "pqa_true_buyer_outside" in m:
        lines.append(f"against the simulator's truth: top-1 {m['top1_model_vs_truth']:.1%}, "
                     f"PQA-routed with the true buyer outside {m['pqa_true_buyer_outside']:.1%}")
    shown.print("\n".join(lines))
    console.print(f"wrote {', '.join(p.name for p in result.written)} to {args.out}")


def _experiment_plan(args) -> None:
    from rich.table import Table

    from . import runner
    from .experiment import plan_sentence

    console, shown = consoles(args.quiet)
    effect, relative = (args.effect, False) if args.effect is not None else (args.lift, True)
    result = runner.experiment_plan(args.config, args.out, effect=effect, relative=relative,
                                    capacity=args.capacity, base_rate=args.base_rate,
                                    periods=args.periods, alpha=args.alpha, power=args.power,
                                    status=status(console))
    p = result.plan
    table = Table(title=f"Holdout plan: {p.capacity:,} accounts a period, base rate "
                        f"{p.base_rate:.2%}, effect {100 * p.effect:+.2f} points "
                        f"(alpha {p.alpha}, power {p.power})")
    for name in ("periods", "held out a period", "share", "touched a period",
                 "touches withheld in all", "power"):
        table.add_column(name, justify="right")
    for r in p.tradeoff.itertuples():
        table.add_row(str(r.periods), f"{r.holdout_per_period:,}", f"{r.holdout_share:.0%}",
                      f"{r.touched_per_period:,}", f"{r.withheld_total:,}", f"{r.power:.3f}")
    shown.print(table)
    shown.print(f"plan: {plan_sentence(p)}.", highlight=False)
    shown.print("A longer test needs a smaller holdout: each row is the smallest holdout "
                "reaching the power in that many periods. Method: " + p.method + ".",
                highlight=False)
    for name, where in result.sources.items():
        if not where.startswith("--"):
            console.print(f"{name.replace('_', ' ')} from {where}", highlight=False)
    if args.out is not None:
        console.print(f"wrote plan.json to {args.out}")


def _experiment_analyze(args) -> None:
    from rich.table import Table

    from . import runner
    from .experiment._report import EXPERIMENT_FILES, names_text

    console, shown = consoles(args.quiet)
    result = runner.experiment_analyze(args.config, args.out, experiment=args.experiment,
                                       track=not args.no_track, status=status(console))
    _tracked(console, result)
    found = result.experiment
    s, e = found.summary, found.effects
    conf = f"{1 - s['alpha']:.0%}"
    table = Table(title=f"Randomised holdout: {names_text(s['experiments'])} "
                        f"({s['outcome']} within {s['horizon_days']} days)")
    truth = "true_effect" in e
    for name in ("segment", "touched", "held out", "conv. touched", "conv. held out",
                 f"per 100 touches ({conf} CI)", "p-value") + (("true",) if truth else ()):
        table.add_column(name, justify="left" if name == "segment" else "right")
    for r in e.itertuples():
        effect = "-" if r.effect != r.effect else \
            f"{100 * r.effect:+.2f} [{100 * r.ci_low:+.2f}, {100 * r.ci_high:+.2f}]"
        table.add_row(r.segment, f"{r.n_touch:,}", f"{r.n_holdout:,}", f"{r.rate_touch:.2%}",
                      f"{r.rate_holdout:.2%}", effect,
                      "-" if r.p_value != r.p_value else f"{r.p_value:.3g}",
                      *([f"{100 * r.true_effect:+.2f}"] if truth else []))
    shown.print(table)
    left = s["left_out"]
    console.print(f"left out: {left['converted_before']:,} converted before their assignment, "
                  f"{left['censored']:,} whose horizon is not over, {left['no_outcome']:,} "
                  f"without an outcome; balance: {s['balance']['imbalanced']} of "
                  f"{s['balance']['features']} features imbalanced (|SMD| > 0.1 beyond "
                  "chance)", highlight=False)
    if truth:
        shown.print("true: the simulator's average effect per 100 touches over the same "
                    "assignments (truth/touches.parquet)", highlight=False)
    for note in s["notes"]:
        console.print(f"[yellow]{note}")
    console.print(f"wrote {', '.join(EXPERIMENT_FILES)} to {args.out}")


def _cache(args) -> None:
    from .cache import FeatureCache, cache_folder

    folder = cache_folder(_config(args))
    tables = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if args.action == "clear":
        n = FeatureCache(folder, data="").clear()
        consoles(args.quiet)[0].print(f"deleted {n:,} cached feature table(s) from {folder}",
                                      highlight=False)
        return
    size = sum(t.stat().st_size for t in tables)
    if not args.quiet:
        print(f"{folder}: {len(tables):,} cached feature table(s), {size / 2**20:,.1f} MiB")


def _demo(args) -> None:
    from .demo import run_demo

    run_demo(out=args.out, n_accounts=args.accounts, seed=args.seed,
             console=consoles(args.quiet)[1])


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help with its default, unless it has none (None, off, or the help
    already says what happens without it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if any(action.default is none for none in (None, False, argparse.SUPPRESS)) \
                or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def _date(text: str) -> dt.date:
    """The one parser of the CLI's dates: ``YYYY-MM-DD``, a real calendar day."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text)
        reason = "not of the form YYYY-MM-DD"
    except ValueError as err:
        reason = str(err)
    raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD such as 2025-06-30; got "
                                     f"{text!r} ({reason})")


def _count(least: int):
    """An int type for argparse: a whole number of at least ``least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {least}; got {text!r}")
        return value
    parse.__name__ = f"whole number >= {least}"
    return parse


_POSITIVE, _NATURAL = _count(1), _count(0)


def _between(closed: bool):
    """A float type for argparse: a number in [0, 1] (``closed``: a share) or strictly
    between 0 and 1 (a rate, a probability)."""
    words = "a share between 0 and 1" if closed else "a number strictly between 0 and 1"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not (0 <= value <= 1 if closed else 0 < value < 1):
            raise argparse.ArgumentTypeError(f"expected {words}; got {text!r}")
        return value
    parse.__name__ = words
    return parse


_SHARE, _RATE = _between(True), _between(False)


_KINDS = ("auto", "logistic", "gradient_boosting")
_MODEL = ("a model file written by `pqlml train`/`retrain` (.skops), or a registry URI: "
          "models:/NAME@champion, models:/NAME/3")
_FOLDER = "output folder (created if missing)"


def _project_options(s) -> None:
    s.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="the project's pqlml.toml (written by `pqlml init` or `pqlml simulate`)")


def _as_of(s, what: str = "one snapshot date YYYY-MM-DD; default: every date of the "
                          "config's [schedule]") -> None:
    s.add_argument("--as-of", dest="as_of", type=_date, metavar="DATE", help=what)


def _parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    p = argparse.ArgumentParser(
        prog="pqlml", formatter_class=_Formatter,
        description="Product-led sales analytics, one command per pipeline stage. "
                    "`pqlml COMMAND --help` lists a command's options.")
    p.add_argument("--version", action="version", version=f"%(prog)s {version('pqlml')}",
                   help="print pqlml's version and exit")
    quiet = dict(action="store_true",
                 help="print nothing but errors: no progress, tables or notes")
    p.add_argument("-q", "--quiet", **quiet)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, text):
        s = sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)
        s.set_defaults(func=func)
        return s

    s = command("demo", _demo, "run the whole flow on a small simulated company")
    s.add_argument("--out", type=Path, default=Path("demo-output"), metavar="DIR", help=_FOLDER)
    s.add_argument("--accounts", type=_POSITIVE, default=2_000, metavar="N",
                   help="accounts of the simulated company")
    s.add_argument("--seed", type=_NATURAL, default=0, metavar="N",
                   help="random seed of the simulation")

    s = command("simulate", _simulate,
                "write a simulated product-led company with known truth")
    s.add_argument("--accounts", type=_POSITIVE, required=True, metavar="N",
                   help="number of company accounts")
    s.add_argument("--seed", type=_NATURAL, default=0, metavar="N",
                   help="random seed of the simulation")
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help=_FOLDER)
    s.add_argument("--months", type=_POSITIVE, default=18, metavar="N",
                   help="length of the event log in months")
    s.add_argument("--chunk-accounts", dest="chunk_accounts", type=_POSITIVE,
                   default=100_000, metavar="N",
                   help="most accounts simulated at once; a larger company is written in "
                        "chunks and memory follows the chunk, about 2.2 GB per 100,000 "
                        "accounts (default: 100000)")
    s.add_argument("--randomised-share", dest="randomised_share", type=_SHARE, default=0.4,
                   metavar="X",
                   help="share of each month's sales touches that is a randomised experiment "
                        "(half touched, half held out); 0 = fully targeted touches "
                        "(default: 0.4)")
    s.add_argument("--export", choices=("segment", "amplitude", "mixpanel", "segment_warehouse"),
                   help="also write the company as this vendor's export, with a config reading "
                        "it (default: no export)")

    s = command("init", _init, "inspect your files and write a commented pqlml.toml for them")
    s.add_argument("dir", type=Path, help="folder for pqlml.toml (created if missing)")
    s.add_argument("--events", type=Path, required=True, metavar="PATH",
                   help="product events (Parquet/CSV, glob)")
    s.add_argument("--users", type=Path, metavar="PATH",
                   help="users: ids, emails, sign-up times (default: none)")
    s.add_argument("--accounts", type=Path, metavar="PATH",
                   help="accounts: ids, domains, creation times (default: none)")
    s.add_argument("--outcomes", type=Path, metavar="PATH",
                   help="outcomes: deals, purchases, demo requests (default: none)")
    s.add_argument("--force", action="store_true", help="replace an existing pqlml.toml")

    s = command("features", _features, "point-in-time features, one row per entity and as_of")
    _project_options(s)
    _full_option(s)
    _as_of(s)
    s.add_argument("--entity", choices=("account", "user"),
                   help="rows per account or per user (default: the config's project.entity)")
    s.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="output file: features.parquet or features.csv")
    s.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                   help="write a .parquet file a batch at a time, never holding the table "
                        "(default: when it has over 2 million rows)")

    s = command("rules", _rules, "today's rules, funnels and tiers and how each converts")
    _project_options(s)
    _as_of(s)
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help=_FOLDER)

    s = command("discover", _discover,
                "which signals separate hand-raisers, converters or accepted leads")
    _project_options(s)
    s.add_argument("--outcome", choices=OUTCOMES,
                   help="the outcome to explain (default: the config's outcomes.target)")
    _as_of(s)
    s.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help=f"{_FOLDER}: signals.csv, signals.best/.adjusted/.adjacent/.skipped.csv "
                        "and signals_plots/")
    s.add_argument("--top", type=_POSITIVE, default=15, metavar="N",
                   help="signals shown in the terminal")

    s = command("backtest", _backtest,
                "forward-in-time folds: the model vs the rules at the same volume")
    _project_options(s)
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help=_FOLDER)
    s.add_argument("--kind", choices=_KINDS, help="model kind (default: the config's model.kind)")
    s.add_argument("--outcome", choices=OUTCOMES,
                   help="the outcome to predict (default: the config's outcomes.target)")
    s.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")
    s.add_argument("--buyers", action="store_true",
                   help="also backtest who to call in each qualified account (the files of "
                        "`pqlml buyers`)")

    s = command("uplift", _uplift,
                "whom a call changes: a touch's effect per account, forward in time, and "
                "calling by uplift vs by probability vs by the rules at capacity")
    _project_options(s)
    s.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help=f"{_FOLDER}: metrics.json, uplift_segments.csv, qini.png, gains.png, "
                        "report.html")
    s.add_argument("--outcome", choices=OUTCOMES,
                   help="the outcome a touch should change (default: the config's "
                        "outcomes.target)")
    s.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")

    s = command("buyers", _buyers,
                "who to call: each qualified account's buyer among its users, forward in time")
    _project_options(s)
    s.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help=f"{_FOLDER}: buyers.json, buyers_segments.csv, buyers_calibration.csv")
    s.add_argument("--test-periods", dest="test_periods", type=_POSITIVE, metavar="N",
                   help="test as_of dates, the last N of the schedule (default: the config's "
                        "model.test_periods)")

    s = command("train", _train, "fit the model on every labelled snapshot and save it")
    _project_options(s)
    s.add_argument("--out", type=Path, default=Path("model.skops"), metavar="FILE",
                   help="output file: the model (.skops)")
    s.add_argument("--kind", choices=_KINDS, help="model kind (default: the config's model.kind)")
    s.add_argument("--outcome", choices=OUTCOMES,
                   help="the outcome to predict (default: the config's outcomes.target)")
    s.add_argument("--no-track", action="store_true",
                   help="do not log the run to MLflow nor register the model")

    s = command("retrain", _retrain,
                "train a challenger, compare it with the champion, promote if better")
    _project_options(s)
    s.add_argument("--out", type=Path, default=Path("retrain"), metavar="DIR",
                   help=f"{_FOLDER}: decision.json and model.skops")

    s = command("drift", _drift,
                "population stability (PSI) of features and score since training")
    _project_options(s)
    _as_of(s, "current snapshot YYYY-MM-DD (default: the schedule's last)")
    s.add_argument("--model", metavar="MODEL",
                   help=f"{_MODEL} (default: the config's model.registered_name@champion)")
    s.add_argument("--out", type=Path, default=Path("drift"), metavar="DIR",
                   help=f"{_FOLDER}: drift.csv, summary.json, drift.png")
    s.add_argument("--top", type=_POSITIVE, default=15, metavar="N",
                   help="drifting features shown in the terminal")
    s.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")

    s = command("score", _score, "scores, tiers and reasons for every account (or user), "
                                 "ready for the CRM")
    _project_options(s)
    s.add_argument("--model", required=True, metavar="MODEL", help=_MODEL)
    _as_of(s, "YYYY-MM-DD (default: the day after the last event)")
    _full_option(s)
    s.add_argument("--out", type=Path, metavar="DIR",
                   help=f"{_FOLDER}: scores.csv (or scores.parquet, salesforce.csv + "
                        "salesforce.sdl + process-conf.xml, hubspot.csv + hubspot.json) and "
                        "not_scored.csv")
    s.add_argument("--format", choices=FORMATS, default="csv",
                   help="csv, parquet, or the files Salesforce Data Loader / a HubSpot import "
                        "take as is")
    s.add_argument("--to-table", dest="to_table", metavar="NAME",
                   help="also write table NAME (and NAME_not_scored) into data.connection")
    s.add_argument("--top", type=_POSITIVE, default=10, metavar="N",
                   help="Tier-1 accounts (or users) shown in the terminal")
    s.add_argument("--batch-rows", dest="batch_rows", type=_POSITIVE, metavar="N",
                   help="entities predicted and explained at a time (default: [model] "
                        "score_batch_rows, 100000); the scores do not depend on it")

    s = command("feedback", _feedback,
                "how often sales accepts each rule, tier, funnel and score band")
    _project_options(s)
    s.add_argument("--model", metavar="MODEL",
                   help=f"{_MODEL}: adds acceptance per score band (default: none)")
    s.add_argument("--out", type=Path, default=Path("feedback"), metavar="DIR", help=_FOLDER)

    s = command("engagement-weights", _engagement_weights,
                "engagement weights from a logistic fit on decayed per-event counts")
    _project_options(s)
    s.add_argument("--until", type=_date, metavar="DATE",
                   help="fit on snapshots whose labels closed by this date YYYY-MM-DD "
                        "(default: the backtest's first test date)")
    s.add_argument("--outcome", choices=OUTCOMES,
                   help="the outcome to weigh events by (default: the config's outcomes.target)")
    s.add_argument("--out", type=Path, default=Path("engagement_weights.csv"), metavar="FILE",
                   help="output file: the weights (.csv)")

    s = command("experiment", None, "randomised holdouts: plan a test, or analyze one")
    actions = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    e = actions.add_parser("plan", formatter_class=_Formatter,
                           help="the holdout and periods a test needs, by a power calculation",
                           description="the holdout and periods a test needs, by a power "
                                       "calculation")
    e.set_defaults(func=_experiment_plan)
    e.add_argument("--config", type=Path, metavar="FILE",
                   help="a pqlml.toml: capacity and base rate from its data when not given, "
                        "alpha and power from its [experiment] (default: none)")
    e.add_argument("--capacity", type=_count(2), metavar="N",
                   help="accounts entering the test per period (default: touched accounts "
                        "per as_of in the data, else [capacity] per_period)")
    e.add_argument("--base-rate", dest="base_rate", type=_RATE, metavar="P",
                   help="conversion rate per period without a touch, e.g. 0.05 (default: the "
                        "median per as_of in the data)")
    size = e.add_mutually_exclusive_group(required=True)
    size.add_argument("--effect", type=float, metavar="D",
                      help="smallest effect worth detecting, absolute: 0.02 = two "
                           "probability points")
    size.add_argument("--lift", type=float, metavar="R",
                      help="smallest effect worth detecting, relative to the base rate: 0.3 "
                           "= 30%% more conversions")
    e.add_argument("--periods", type=_POSITIVE, metavar="K",
                   help="periods the test may run (default: the fewest that can reach the "
                        "power)")
    e.add_argument("--alpha", type=_RATE, metavar="A",
                   help="two-sided significance level (default: [experiment] alpha, 0.05)")
    e.add_argument("--power", type=_RATE, metavar="P",
                   help="power to reach (default: [experiment] power, 0.8)")
    e.add_argument("--out", type=Path, metavar="DIR",
                   help=f"{_FOLDER}: plan.json (default: print only)")
    e = actions.add_parser("analyze", formatter_class=_Formatter,
                           help="a randomised holdout's incremental conversion per segment",
                           description="a randomised holdout's incremental conversion per "
                                       "segment, with CIs and the arms' balance")
    e.set_defaults(func=_experiment_analyze)
    _project_options(e)
    e.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help=f"{_FOLDER}: experiment.json, experiment_segments.csv, balance.csv, "
                        "effects.png, report.html")
    e.add_argument("--experiment", metavar="NAME",
                   help="the experiment's name in the holdouts table, or a pattern such as "
                        "'sales-touch-2025-*' (default: every assignment)")
    e.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")
    for e in actions.choices.values():
        e.add_argument("--no-cache", dest="no_cache", action="store_true",
                       help="build every feature table afresh (neither read nor write the "
                            "cache)")
        e.add_argument("-q", "--quiet", **quiet | {"default": argparse.SUPPRESS})

    s = command("validate", _validate,
                "load the configured tables and report what validation found")
    _project_options(s)

    s = command("cache", _cache, "the feature tables kept between commands: info or clear")
    s.add_argument("action", choices=("info", "clear"),
                   help="info: the cached tables and their size; clear: delete them")
    _project_options(s)
    for name, s in sub.choices.items():
        if name != "cache" and any("--config" in a.option_strings for a in s._actions):
            s.add_argument("--no-cache", dest="no_cache", action="store_true",
                           help="build every feature table afresh (neither read nor write "
                                "the cache)")
        s.add_argument("-q", "--quiet", **quiet | {"default": argparse.SUPPRESS})
    return p


def main(argv=None) -> int:
    """Run ``pqlml argv`` and return its exit code: 0 done, 2 a bad option or a pqlml error
    (one line, never a traceback), 130 interrupted."""
    from .cache import caching
    from .terminal import dependency_warnings_hidden

    try:
        args = _parser().parse_args(argv)
    except SystemExit as done:          # --help, --version, or argparse's "error: ..." (2)
        return done.code if isinstance(done.code, int) else 2
    try:
        with dependency_warnings_hidden(), caching(not getattr(args, "no_cache", False)):
            args.func(args)
    except PqlmlError as exc:
        print(f"pqlml {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # every output is written to a temporary name and renamed into place: an
        # interrupted command leaves the previous files as they were
        print(f"pqlml {args.command}: interrupted; files being written were discarded, "
              "earlier ones are unchanged", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":   # pragma: no cover
    sys.exit(main())
