"""``pqlml`` command line: one sub-command per pipeline stage.

Every command that works on a project takes ``--config``; errors pqlml raises
on purpose are printed as one clear message (exit code 2), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

from .errors import PqlmlError
from .labels import OUTCOMES

__all__ = ["main"]


def _simulate(args) -> None:
    from rich.console import Console

    from .simulate import simulate

    result = simulate(args.accounts, args.seed, args.out, months=args.months, progress=True)
    counts = ", ".join(f"{v:,} {k}" for k, v in result.counts.items())
    Console(stderr=True).print(f"wrote {counts} to {result.out}; truth in {result.out / 'truth'}; "
                               f"config {result.config}")
    if args.export:
        from .simulate._export import export_company
        config = export_company(result.out, args.export, result.out / args.export)
        Console(stderr=True).print(f"exported as {args.export} to {config.parent}; config {config}")


def _init(args) -> None:
    from rich.console import Console

    from .init import init_project

    console = Console(stderr=True)
    with console.status("inspecting the files and drafting the config"):
        result = init_project(args.dir, args.events, users=args.users, accounts=args.accounts,
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
    from rich.console import Console

    from .preflight import preflight
    from .project import open_project

    # the whole opening: tables, identity routes and the cross-table checks (enrichment
    # domains, sign-ups of unknown users), as every later stage sees them
    project = open_project(args.config)
    report = project.report
    console = Console()
    for name, table in project.tables.items():
        console.print(f"{name}: {table.count().execute():,} rows")
    console.print("\n".join(report.render()) if len(report) else "no findings", markup=False)
    # then what the later stages would refuse: schedule, horizon, outcomes, rules
    checks = preflight(project)
    for line in checks.facts:
        console.print(f"ok: {line}", markup=False)
    for line in checks.warnings:
        console.print(f"warning: {line}", markup=False)
    checks.raise_if_any()


def _config(args):
    """The command's config, read (cheaply) before any work so its outputs can be checked
    against its inputs."""
    from .config import load_config
    return load_config(args.config)


def _features(args) -> None:
    from rich.console import Console

    from .outputs import check_file, write_frame
    from .project import build_features, open_project

    config = _config(args)
    check_file(args.out, config=config)
    console = Console(stderr=True)
    with console.status("loading and validating the tables"):
        project = open_project(config)
    with console.status("building point-in-time features"):
        frame = build_features(project, as_of=args.as_of, entity=args.entity)
    write_frame(frame, args.out)
    for line in project.report.render():
        console.print(f"  {line}", markup=False)
    console.print(f"wrote {len(frame):,} rows x {frame.shape[1] - 2} features "
                  f"({frame.as_of.nunique()} as_of dates) to {args.out}")


def _rules(args) -> None:
    from rich.console import Console
    from rich.table import Table

    from .outputs import check_folder
    from .rules import REPORT_FILES, report

    config = _config(args)
    check_folder(args.out, config=config, names=REPORT_FILES)
    console = Console(stderr=True)
    with console.status("rules, fit, funnels and tiers per snapshot, with their outcomes"):
        rates = report(config, args.out, as_of=args.as_of)
    pooled = rates[rates.period == "all"]
    table = Table(title="pooled over all periods: conversion within the horizon (95% Wilson)")
    for col in ("kind", "group", "entities", "conversions", "rate", "95% CI"):
        table.add_column(col, justify="left" if col in ("kind", "group") else "right")
    for r in pooled.itertuples():
        ci = "" if r.entities == 0 else f"{r.conversion_low:.1%}-{r.conversion_high:.1%}"
        rate = "empty" if r.entities == 0 else f"{r.conversion_rate:.1%}"
        table.add_row(r.kind, r.group, f"{r.entities:,}", f"{r.conversion:,}", rate, ci)
    Console().print(table)
    empty = pooled[pooled.entities == 0]
    if len(empty):
        console.print("[yellow]empty groups (no labelled account-month): "
                      + ", ".join(f"{r.kind} {r.group}" for r in empty.itertuples()))
    console.print(f"wrote {', '.join(REPORT_FILES)} to {args.out}")


def _discover(args) -> None:
    from rich.console import Console
    from rich.table import Table

    from .discover import discover
    from .outputs import check_file

    config = _config(args)
    stem = args.out.with_suffix("")
    check_file(args.out, config=config, companions=[Path(f"{stem}.{n}.csv") for n in
                                                    ("best", "adjusted", "skipped", "adjacent")])
    console = Console(stderr=True)
    with console.status(f"scanning every feature against {args.outcome}"):
        found = discover(config, args.outcome, as_of=args.as_of)
    with console.status("writing the tables and heatmaps"):
        plots = found.write(args.out)
    table = Table(title=f"best rule per signal for {found.outcome} ({found.rows:,} labelled "
                        f"snapshots, {found.positives:,} positive)")
    for col in ("rule", "support", "rate with", "lift", "phi", "q", "adjacent"):
        table.add_column(col, justify="left" if col == "rule" else "right")
    for r in found.best.head(args.top).itertuples():
        table.add_row(r.rule, f"{r.support:,}", f"{r.rate_with:.1%}", f"{r.lift:.1f}x",
                      f"{r.phi:.3f}", f"{r.q_value:.1g}", "yes" if r.adjacent else "")
    Console().print(table)
    gone = found.adjusted[found.adjusted.vanishes].feature.tolist()
    if gone:
        console.print(f"significant alone, not once size, activity and the others are "
                      f"controlled: {', '.join(gone)}")
    for note in found.notes:
        console.print(f"[yellow]{note}")
    if len(found.skipped):
        console.print("not scanned: " + ", ".join(f"{r.feature} ({r.reason})"
                                                  for r in found.skipped.itertuples()))
    console.print(f"wrote {args.out}, its .best/.adjusted/.adjacent/.skipped tables and "
                  f"{plots}/")


@contextmanager
def _periods(console, label: str):
    """A progress bar over test periods: yields ``step(i, n, as_of)`` for the stage's
    ``progress`` callback; ``label`` is formatted with ``i`` (1-based), ``n`` and ``as_of``."""
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("building features and labels", total=None)
        yield lambda i, n, as_of: bar.update(task, total=n, completed=i,
                                             description=label.format(i=i + 1, n=n, as_of=as_of))


def _backtest(args) -> None:
    from rich.console import Console

    from .backtest import REPORT_FILES, backtest, write_report
    from .outputs import check_folder
    from .project import open_project

    config = _config(args)
    check_folder(args.out, config=config, names=REPORT_FILES)
    console = Console(stderr=True)
    project = open_project(config)
    with _periods(console, "fold {i}/{n}: test {as_of}") as step:
        metrics, rows = backtest(project, kind=args.kind, outcome=args.outcome, progress=step)
    write_report(metrics, rows, args.out)
    if not args.no_track:
        from .track import log_backtest, tracked_run, tracking_errors, tracking_uri
        with tracking_errors("logging the backtest run", f"The report was written to {args.out}."), \
                tracked_run(project, "backtest") as run:
            log_backtest(metrics, args.out)
        console.print(f"MLflow run {run.info.run_id} in {tracking_uri()}")
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
    Console().print("\n".join(lines))
    for note in metrics.get("notes", []):
        console.print(f"[yellow]{note}")
    console.print(f"wrote {', '.join(REPORT_FILES)} to {args.out}")


def _train(args) -> None:
    from rich.console import Console

    from .model import fit_snapshots
    from .outputs import check_file
    from .project import open_project

    config = _config(args)
    check_file(args.out, config=config, suffixes=(".skops",))
    console = Console(stderr=True)
    project = open_project(config)
    cfg = project.config.model
    with console.status("training on every labelled snapshot"):
        model, frame = fit_snapshots(project, kind=args.kind, outcome=args.outcome)
    model.save(args.out)
    if not args.no_track:
        from .track import log_train, register, tracked_run, tracking_errors, tracking_uri
        with tracking_errors("logging the train run", f"The model was saved to {args.out}; "
                             "nothing was registered."), tracked_run(project, "train") as run:
            uri = log_train(model, args.out, frame)
            version, alias = register(uri, cfg.registered_name)
        console.print(f"MLflow run {run.info.run_id} in {tracking_uri()}; registered "
                      f"{cfg.registered_name} version {version} as @{alias}")
    info = model.trained_on
    console.print(f"trained a {model.kind} model for {model.outcome} on {info['rows']:,} snapshots "
                  f"({info['positives']:,} positive, {info['as_of_first']} .. {info['as_of_last']}), "
                  f"{len(model.features)} features; saved {args.out}")


def _retrain(args) -> None:
    from rich.console import Console

    from .outputs import check_folder
    from .project import open_project
    from .retrain import RETRAIN_FILES, run_retrain
    from .track import tracking_uri

    config = _config(args)
    check_folder(args.out, config=config, names=RETRAIN_FILES)
    console = Console(stderr=True)
    project = open_project(config)
    with _periods(console, "period {i}/{n}: {as_of}") as step:
        decision, registered, run_id = run_retrain(project, args.out, progress=step)
    console.print(f"MLflow run {run_id} in {tracking_uri()}")
    word = {"promoted": "PROMOTED", "first_champion": "FIRST CHAMPION", "kept": "KEPT the champion",
            "failed": "FAILED", "not_compared": "NOT COMPARED"}[decision.action]
    Console().print(f"retrain: {word}: {decision.reason}")
    if registered:
        console.print(f"registered {project.config.model.registered_name} version {registered[0]} "
                      f"as @{registered[1]}; wrote {args.out / 'model.skops'} and decision.json")
    if decision.action == "failed":
        raise PqlmlError(f"retraining failed, the champion was kept: {decision.reason}")


def _drift(args) -> None:
    from rich.console import Console
    from rich.table import Table

    from .drift import DRIFT_FILES, drift, plot_drift
    from .outputs import check_folder, write_frame, write_json
    from .project import open_project

    config = _config(args)
    check_folder(args.out, config=config, names=DRIFT_FILES)
    console = Console(stderr=True)
    name = config.model.registered_name
    if args.model:      # the model, from its file or the store, before any work
        from .model import Model
        model, source = Model.load(args.model), str(args.model)
    else:
        from .track import champion, tracking_errors, use_store
        with tracking_errors("reading the champion"):
            use_store(create=False)
            found = champion(name)
        if found is None:
            raise PqlmlError(f"No model is registered as {name}@champion in the MLflow store. "
                             f"Fix: run `pqlml retrain --config {args.config}` (or `pqlml "
                             "train`) first, or pass --model FILE.")
        model, source = found[1], f"models:/{name}@champion (version {found[0]})"
    project = open_project(config)
    cfg = project.config
    with console.status("building the reference and current snapshots"):
        table, summary = drift(project, model=model, as_of=args.as_of)
    summary["model"] = source
    write_frame(table, args.out / "drift.csv")
    write_json(summary, args.out / "summary.json")
    plot_drift(table, args.out / "drift.png", threshold=cfg.drift.threshold, warn=cfg.drift.warn)
    if not args.no_track:
        from .track import log_drift, tracked_run, tracking_errors, tracking_uri
        with tracking_errors("logging the drift run", f"The table was written to {args.out}."), \
                tracked_run(project, "drift") as run:
            log_drift(table, summary, args.out)
        console.print(f"MLflow run {run.info.run_id} in {tracking_uri()}")
    shown = Table(title=f"Drift of {source}: {summary['reference'][0]} .. {summary['reference'][1]} "
                        f"vs {summary['as_of']}")
    for col in ("feature", "psi", "status", "reference_mean", "current_mean"):
        shown.add_column(col, justify="left" if col in ("feature", "status") else "right")
    for r in table[table.status != "stable"].head(args.top).itertuples():
        shown.add_row(r.feature, f"{r.psi:.3f}", r.status, f"{r.reference_mean:.3g}",
                      f"{r.current_mean:.3g}")
    Console().print(shown)
    Console().print(f"score PSI {summary['psi_score']:.3f}; {summary['features_flagged']} feature(s) "
                    f"over {cfg.drift.threshold:g}, {summary['features_moderate']} moderate")
    console.print(f"wrote {', '.join(DRIFT_FILES)} to {args.out}")


def _feedback(args) -> None:
    from rich.console import Console
    from rich.table import Table

    from .feedback import FEEDBACK_FILES, acceptance
    from .outputs import check_folder

    config = _config(args)
    check_folder(args.out, config=config, names=FEEDBACK_FILES)
    console = Console(stderr=True)
    model = None
    if args.model:
        from .score import Scorer
        model = Scorer.load(args.model).model
    with console.status("attaching dispositions to their snapshots"):
        fb = acceptance(config, model=model)
    plot = fb.write(args.out)
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
    from rich.console import Console
    from rich.table import Table

    from .engagement import fit_engagement_weights, weights_toml
    from .outputs import check_file, write_frame

    config = _config(args)
    check_file(args.out, config=config, suffixes=(".csv",))
    console = Console(stderr=True)
    with console.status("fitting engagement weights"):
        table = fit_engagement_weights(config, until=args.until, outcome=args.outcome)
    a = table.attrs
    write_frame(table, args.out)
    grid = Table("event", "weight", "95% CI", "p", title=(
        f"engagement weights for {a['outcome']}: {a['rows']:,} snapshots ({a['positives']:,} "
        f"positive) whose labels closed by {a['until']}, half-life {a['half_life_days']:g} days"))
    for r in table.itertuples():
        grid.add_row(r.event, f"{r.weight:+.4g}",
                     "" if np.isnan(r.ci_low) else f"{r.ci_low:+.3g} .. {r.ci_high:+.3g}",
                     "not seen" if np.isnan(r.p_value) else f"{r.p_value:.1g}")
    console.print(grid)
    print(weights_toml(table), end="")
    console.print(f"written to {args.out}; paste the block above into the config to use them")


def _score(args) -> None:
    from rich.console import Console
    from rich.table import Table

    from .outputs import check_file, check_replaceable, check_table, write_frames, write_tables
    from .project import open_project
    from .score import NOT_SCORED_COLUMNS, SCORE_COLUMNS, Scorer

    if not (args.out or args.to_table):
        raise PqlmlError("Say where the scores go: --out scores.csv|scores.parquet and/or "
                         "--to-table NAME.")
    # every argument first: nothing is written, and no work done, unless all of them hold
    config = _config(args)
    side = None if not args.out else args.out.with_name(f"{args.out.stem}.not_scored.csv")
    if args.out:
        check_file(args.out, config=config, companions=[side])
    tables = {}
    if args.to_table:
        tables = {args.to_table: SCORE_COLUMNS, f"{args.to_table}_not_scored": NOT_SCORED_COLUMNS}
        check_table(args.to_table, config, companions=list(tables)[1:])
    scorer = Scorer.load(args.model)
    console = Console(stderr=True)
    project = open_project(config)
    check_replaceable(project.con, tables)
    with console.status(f"scoring with {scorer.version}"):
        scores, gone = scorer.score(project, as_of=args.as_of, with_not_scored=True)
    key = scores.columns[0]
    if args.to_table:
        write_tables(project.con, dict(zip(tables, (scores, gone))))
        where = f"tables {args.to_table} and {args.to_table}_not_scored in {project.config.data.connection}"
    if args.out:
        write_frames({args.out: scores, side: gone})
        where = f"{args.out} and {side}" + (f"; {where}" if args.to_table else "")
    counts = gone.code.value_counts()
    as_of = scores.as_of.iloc[0].date() if len(scores) else args.as_of
    table = Table(title=f"Tier 1 at {as_of} ({scorer.version})")
    for col in (key, "probability", "reason_1", "reason_2"):
        table.add_column(col)
    for r in scores[scores.tier == "tier_1"].head(args.top).itertuples():
        table.add_row(str(getattr(r, key)), f"{r.probability:.1%}", r.reason_1, r.reason_2)
    Console().print(table)
    tiers = scores.tier.value_counts()
    Console().print(f"scored {len(scores):,} {key.split('_')[0]}s ("
                    + ", ".join(f"{t} {tiers.get(t, 0):,}" for t in
                                ("tier_1", "tier_2", "tier_3", "self_serve")) + f"); not scored "
                    f"{len(gone):,}" + ("" if gone.empty else ": " + ", ".join(
                        f"{n:,} {r}" for r, n in counts.items())))
    console.print(f"wrote {where}")


def _cache(args) -> None:
    from rich.console import Console

    from .cache import FeatureCache, cache_folder

    folder = cache_folder(_config(args))
    tables = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if args.action == "clear":
        n = FeatureCache(folder, data="").clear()
        Console(stderr=True).print(f"deleted {n:,} cached feature table(s) from {folder}",
                                   highlight=False)
        return
    size = sum(t.stat().st_size for t in tables)
    print(f"{folder}: {len(tables):,} cached feature table(s), {size / 2**20:,.1f} MiB")


def _demo(args) -> None:
    from .demo import run_demo

    run_demo(out=args.out, n_accounts=args.accounts, seed=args.seed)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pqlml", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("demo", help="run the whole flow on a small simulated company")
    s.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    s.add_argument("--accounts", type=int, default=2_000)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_demo)

    s = sub.add_parser("simulate", help="write a simulated product-led company with known truth")
    s.add_argument("--accounts", type=int, required=True, help="number of company accounts")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--months", type=int, default=18, help="length of the event log")
    s.add_argument("--export", choices=("segment", "amplitude", "mixpanel", "segment_warehouse"),
                   help="also write the company as this vendor's export, with a config reading it")
    s.set_defaults(func=_simulate)

    s = sub.add_parser("init", help="inspect your files and write a commented pqlml.toml for them")
    s.add_argument("dir", type=Path, help="folder for pqlml.toml (created if missing)")
    s.add_argument("--events", type=Path, required=True, help="product events (Parquet/CSV, glob)")
    s.add_argument("--users", type=Path, help="users: ids, emails, sign-up times")
    s.add_argument("--accounts", type=Path, help="accounts: ids, domains, creation times")
    s.add_argument("--outcomes", type=Path, help="outcomes: deals, purchases, demo requests")
    s.add_argument("--force", action="store_true", help="replace an existing pqlml.toml")
    s.set_defaults(func=_init)

    s = sub.add_parser("features", help="point-in-time features, one row per entity and as_of")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--as-of", dest="as_of", help="one date YYYY-MM-DD (default: the config's schedule)")
    s.add_argument("--entity", choices=("account", "user"), help="default: project.entity")
    s.add_argument("--out", type=Path, required=True, help="features.parquet or features.csv")
    s.set_defaults(func=_features)

    s = sub.add_parser("rules", help="today's rules, funnels and tiers and how each converts")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--as-of", dest="as_of", help="one date YYYY-MM-DD (default: the config's schedule)")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.set_defaults(func=_rules)

    s = sub.add_parser("discover", help="which signals separate hand-raisers, converters or accepted leads")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--outcome", choices=OUTCOMES,
                   help="default: outcomes.target")
    s.add_argument("--as-of", dest="as_of", help="one date YYYY-MM-DD (default: the config's schedule)")
    s.add_argument("--out", type=Path, required=True, help="signals.csv or signals.parquet")
    s.add_argument("--top", type=int, default=15, help="signals shown in the terminal")
    s.set_defaults(func=_discover)

    s = sub.add_parser("backtest", help="forward-in-time folds: the model vs the rules at the same volume")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--kind", choices=("logistic", "gradient_boosting"), help="default: model.kind")
    s.add_argument("--outcome", choices=OUTCOMES, help="default: outcomes.target")
    s.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")
    s.set_defaults(func=_backtest)

    s = sub.add_parser("train", help="fit the model on every labelled snapshot and save it")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--out", type=Path, default=Path("model.skops"), help="model file (skops)")
    s.add_argument("--kind", choices=("logistic", "gradient_boosting"), help="default: model.kind")
    s.add_argument("--outcome", choices=OUTCOMES, help="default: outcomes.target")
    s.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")
    s.set_defaults(func=_train)

    s = sub.add_parser("retrain", help="train a challenger, compare it with the champion, promote if better")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--out", type=Path, default=Path("retrain"), help="output folder")
    s.set_defaults(func=_retrain)

    s = sub.add_parser("drift", help="population stability (PSI) of features and score since training")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--as-of", dest="as_of", help="current snapshot YYYY-MM-DD (default: the schedule's last)")
    s.add_argument("--model", type=Path, help="a model file (default: the registered champion)")
    s.add_argument("--out", type=Path, default=Path("drift"), help="output folder")
    s.add_argument("--top", type=int, default=15, help="drifting features shown in the terminal")
    s.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")
    s.set_defaults(func=_drift)

    s = sub.add_parser("score", help="scores, tiers and reasons for every account (or user), "
                                     "ready for the CRM")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--model", required=True,
                   help="model file, or MLflow URI such as models:/pqlml@champion")
    s.add_argument("--as-of", dest="as_of", help="YYYY-MM-DD (default: the day after the last event)")
    s.add_argument("--out", type=Path, help="scores.csv or scores.parquet (+ <name>.not_scored.csv)")
    s.add_argument("--to-table", dest="to_table",
                   help="also write table NAME (and NAME_not_scored) into data.connection")
    s.add_argument("--top", type=int, default=10,
                   help="Tier-1 accounts (or users) shown in the terminal")
    s.set_defaults(func=_score)

    s = sub.add_parser("feedback", help="how often sales accepts each rule, tier, funnel and score band")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--model", help="model file or MLflow URI: adds acceptance per score band")
    s.add_argument("--out", type=Path, default=Path("feedback"), help="output folder")
    s.set_defaults(func=_feedback)

    s = sub.add_parser("engagement-weights",
                       help="engagement weights from a logistic fit on decayed per-event counts")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--until", help="fit on snapshots whose labels closed by this date "
                                   "(default: the backtest's first test date)")
    s.add_argument("--outcome", choices=OUTCOMES, help="default: outcomes.target")
    s.add_argument("--out", type=Path, default=Path("engagement_weights.csv"))
    s.set_defaults(func=_engagement_weights)

    s = sub.add_parser("validate", help="load the configured tables and report what validation found")
    s.add_argument("--config", type=Path, required=True)
    s.set_defaults(func=_validate)

    s = sub.add_parser("cache", help="the feature tables kept between commands: info or clear")
    s.add_argument("action", choices=("info", "clear"))
    s.add_argument("--config", type=Path, required=True)
    s.set_defaults(func=_cache)
    for name, s in sub.choices.items():
        if name != "cache" and any("--config" in a.option_strings for a in s._actions):
            s.add_argument("--no-cache", dest="no_cache", action="store_true",
                           help="build every feature table afresh (neither read nor write "
                                "the cache)")
    return p


def main(argv=None) -> int:
    from .cache import caching

    args = _parser().parse_args(argv)
    try:
        with caching(not getattr(args, "no_cache", False)):
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
