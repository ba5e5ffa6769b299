"""``pqlml demo``: the whole flow on a small simulated company, with a short report.

Stages are added here as they land: simulated company -> canonical tables ->
features and labels -> rules, funnels and tiers -> signals -> model backtest ->
retraining into the MLflow registry and drift -> scores, tiers and reasons -> the
sales feedback loop (acceptance per tier and score band). The same report, with its
figures, is written to ``<out>/report.html`` (:mod:`pqlml.report`).
"""

from __future__ import annotations

import time
from pathlib import Path

from . import runner
from .errors import PqlmlError
from .terminal import periods, status, step

__all__ = ["run_demo"]


#: What the demo adds to its company's config: its scores carry each account's uplift
#: (off by default: learning it triples ``pqlml train``'s time, README "In the scores").
DEMO_UPLIFT = """
[uplift]
# The demo's scores carry each account's uplift (a touch's effect, pqlml.uplift): pqlml
# train learns it beside the model. Off by default; on here to show it.
in_scores = true
"""


def _uplift_in_scores(config: Path) -> None:
    from .outputs import write_text

    write_text(Path(config).read_text() + DEMO_UPLIFT, config)


def run_demo(out="demo-output", n_accounts: int = 2_000, seed: int = 0, console=None) -> dict:
    """Run every stage that exists on a simulated company; print and return a summary, and
    write it with its figures to ``<out>/report.html``."""
    import pandas as pd
    from rich.console import Console

    from .discover import top_table
    from .report import REPORT_NAME, Page, Section
    from .simulate import simulate

    console = console or Console()
    t0 = time.perf_counter()
    out = Path(out)
    console.rule("[bold]pqlml demo")
    console.print(f"1. Simulating a product-led company: {n_accounts:,} accounts, seed {seed} -> {out}/")
    sim = simulate(n_accounts, seed, out, progress=not console.quiet)
    _uplift_in_scores(sim.config)

    console.print(f"2. Loading and validating the tables named in {sim.config}")
    with step(console, "   loading the tables"):
        opened = runner.validate(sim.config, preflight=False)
    project, counts = opened.project, opened.counts
    console.print(_table("canonical tables", ["table", "rows"],
                         [(k, f"{v:,}") for k, v in counts.items()]))
    page = Page(f"pqlml demo: a simulated product-led company of {n_accounts:,} accounts",
                {"accounts": f"{counts.get('accounts', 0):,}", "events": f"{counts.get('events', 0):,}"},
                _HOW, subtitle=f"Seed {seed}; every file is in {out}/.")
    page.sections.append(Section("1-2. The canonical tables", [pd.DataFrame(
        {"table": list(counts), "rows": [f"{v:,}" for v in counts.values()]})]))
    console.print(_table("identity and validation", ["table", "what", "rows"],
                         [(f.table, f.kind.replace("_", " "), f"{f.rows:,}") for f in project.report]))

    console.print("3. Point-in-time features and labels on the monthly schedule")
    t = time.perf_counter()
    with step(console, "   building features and labels"):
        X, y = project.features(), project.labels()
    seconds = time.perf_counter() - t
    console.print(f"   {len(X):,} (account, as_of) rows x {X.shape[1] - 2} features over "
                  f"{X.as_of.nunique()} months in {seconds:.1f} s; features see only events "
                  f"before each as_of, labels look at ({project.config.labels.horizon_days} days after it]")
    per_month = y.groupby(y.as_of.dt.strftime("%Y-%m")).agg(
        accounts=("account_id", "size"), hand_raise=("hand_raise", "mean"),
        conversion=("conversion", "mean")).tail(6)
    page.sections.append(Section("3. Point-in-time features and labels", [
        f"{len(X):,} (account, as_of) rows x {X.shape[1] - 2} features over "
        f"{X.as_of.nunique()} months; labels per as_of (last 6):",
        per_month.reset_index().assign(**{c: per_month[c].map("{:.1%}".format).to_numpy()
                                          for c in ("hand_raise", "conversion")})]))
    console.print(_table("labels per as_of (last 6)", ["as_of", "eligible accounts", "hand-raise rate",
                                                       "conversion rate"],
                         [(m, f"{int(r.accounts):,}", f"{r.hand_raise:.1%}", f"{r.conversion:.1%}")
                          for m, r in per_month.iterrows()]))
    last = X[X.as_of == X.as_of.max()].nlargest(5, "active_users_30d")
    console.print(_table(f"most active accounts at {X.as_of.max().date()}",
                         ["account", "active_users_30d", "events_30d", "days_since_last_event"],
                         [(r.account_id, str(r.active_users_30d), f"{r.events_30d:,}",
                           f"{r.days_since_last_event:.0f}") for r in last.itertuples()]))

    console.print("4. Today's hand-set rules, funnels and tiers (the baseline a model must beat)")
    rates = runner.rules(project, out / "rules", status=status(console)).rates
    pooled = rates[(rates.period == "all") & rates.kind.isin(["tier", "funnel"])]
    console.print(f"   rules: {', '.join(f'{k} = {v!r}' for k, v in project.config.rules.items())}; "
                  f"tier 1 = {project.config.tiers.intent_rule} and ICP fit")
    console.print(_table("conversion within the horizon per tier and funnel, all months "
                         f"(95% Wilson; plot: {out / 'rules' / 'rates.png'})",
                         ["kind", "group", "account-months", "conversion rate", "95% CI"],
                         [(r.kind, r.group, f"{r.entities:,}",
                           "empty" if not r.entities else f"{r.conversion_rate:.1%}",
                           "" if not r.entities else
                           f"{r.conversion_low:.1%}-{r.conversion_high:.1%}")
                          for r in pooled.itertuples()]))

    page.sections.append(Section("4. Today's rules: conversion per tier and funnel, all months", [
        pd.DataFrame([(r.kind, r.group, f"{r.entities:,}",
                       "empty" if not r.entities else f"{r.conversion_rate:.1%}",
                       "" if not r.entities else f"{r.conversion_low:.1%}-{r.conversion_high:.1%}")
                      for r in pooled.itertuples()],
                     columns=["kind", "group", "account-months", "conversion rate", "95% CI"]),
        out / "rules" / "rates.png"]))
    console.print("5. Signal discovery: which signals go with a hand-raise, alone and adjusted")
    found = runner.discover(project, out / "signals", outcome="hand_raise",
                            status=status(console)).found
    q_of = {m: r.q_value_adjusted for r in found.adjusted.itertuples()      # its group's q
            for m in r.members.split(";")}
    rows = []
    shown = found.best[found.best.feature.isin(q_of) | found.best.adjacent]
    for r in shown.head(12).itertuples():
        adj = q_of.get(r.feature)
        rows.append((r.rule, f"{r.lift:.1f}x", f"{r.q_value:.0e}",
                     "adjacent" if r.adjacent else ("-" if adj is None or pd.isna(adj) else
                                                    ("kept" if adj <= 0.05 else "vanishes"))))
    console.print(_table(f"top signals for hand-raise ({found.positives:,} of {found.rows:,} "
                         f"account-months; heatmaps in {out / 'signals'})",
                         ["best rule", "lift", "q", "adjusted for size and activity"], rows))

    page.sections.append(Section("5. Signal discovery: top signals for hand-raise", [
        top_table(found.best, 12), out / "signals" / "signals_plots" / "top_signals.png"]))
    lead = found.best[~found.best.adjacent].head(1)
    if len(lead):
        page.numbers["top signal lift (hand-raise)"] = f"{lead.lift.iloc[0]:.2f}x: {lead.rule.iloc[0]}"
    console.print("6. A model instead of the thresholds: forward-in-time backtest at the rules' volume")
    try:
        with periods(console, "   backtest", "fold {i}/{n}, test {as_of}") as advance:
            tested = runner.backtest(project, out / "backtest", kind="logistic",
                                     progress=advance)
        _show_backtest(console, tested.metrics, out, page)
        console.print(f"   tracked in MLflow: run {tested.run_id} in {tested.store}")
    except PqlmlError as err:          # a company too small for monthly folds
        console.print(f"   skipped: {err}")

    console.print("7. Monthly retraining: challenger vs champion in the MLflow registry, then drift")
    try:
        _retrain_and_drift(console, project, out, page)
    except PqlmlError as err:
        console.print(f"   skipped: {err}")

    truth = pd.read_csv(out / "truth" / "drivers.csv")
    console.print(_table("the simulator's truth (truth/drivers.csv)",
                         ["signal", "role", "transform", "effect on log-odds"],
                         [(r.name, r.role, r.transform, f"{r.effect:+.2f}")
                          for r in truth[truth.role != "intercept"].itertuples()]))

    console.print("8. Scores for sales: the champion scores every account, with tiers and reasons")
    scored = 0
    try:
        scored = _score(console, project, out, page)
    except PqlmlError as err:
        console.print(f"   skipped: {err}")

    console.print("9. The sales feedback loop: how often reps accept what each tier sends them")
    try:
        _feedback(console, project, out, page)
    except PqlmlError as err:
        console.print(f"   skipped: {err}")
    page.sections.append(Section("The simulator's truth (truth/drivers.csv)",
                                 [truth[truth.role != "intercept"]]))
    page.write(out / REPORT_NAME)
    elapsed = time.perf_counter() - t0
    console.print(f"report with figures: {out / REPORT_NAME}")
    console.rule(f"demo finished in {elapsed:.1f} s")
    return {"counts": counts, "features": X.shape, "labels": len(y), "seconds": elapsed,
            "scored": scored, "builds": list(project.builds)}


def _score(console, project, out, page) -> int:
    from .report import Section
    from .score import Scores
    from .score_report import score_page

    name = project.config.model.registered_name
    scored = runner.score(project, f"models:/{name}@champion", out=out, status=status(console))
    scores, gone, path = scored.scores, scored.not_scored, scored.written[0]
    tiers = scores.tier.value_counts()
    console.print(f"   {len(scores):,} accounts scored at {scores.as_of.iloc[0].date()} by "
                  f"{scored.version} ("
                  + ", ".join(f"{t} {tiers.get(t, 0):,}" for t in
                              ("tier_1", "tier_2", "tier_3", "self_serve"))
                  + f"); {len(gone):,} not scored: "
                  + ", ".join(f"{n:,} {c.replace('_', ' ')}" for c, n in gone.code.value_counts().items())
                  + f"; {path} and not_scored.csv")
    if "uplift" in scores:
        console.print(_uplift_line(scores, project))
    top = scores[scores.tier == "tier_1"].head(10)
    console.print(_table("top 10 Tier-1 accounts to call, and why",
                         ["account", "domain", "probability", "motion", "contact (bucket)",
                          "reasons"],
                         [(r.account_id, r.domain, f"{r.probability:.0%}", r.motion, _contact(r),
                           "\n".join((r.reason_1, r.reason_2, r.reason_3))) for r in top.itertuples()]))
    scores_page = score_page(Scores(scores, gone, scored.version), top=10)
    page.numbers |= {"accounts scored": scores_page.numbers["accounts scored"],
                     "tier 1 accounts to call": scores_page.numbers["tier 1"]}
    page.sections += [Section(f"8. {s.title}", s.blocks) for s in scores_page.sections]
    return len(scores)


def _uplift_line(scores, project) -> str:
    """What the scores' uplift (a touch's estimated effect) says, in one line."""
    known = scores.uplift.notna()
    moved = scores.reason_1.str.startswith("(uplift) likely to buy on its own").sum()
    empty = scores.uplift_note[~known].str.extract(r"segment (\S+):")[0].value_counts()
    median = 100 * scores.uplift[known].median()
    return (f"   uplift ({project.config.uplift.learner} learner, a touch's effect on the chance "
            f"of converting): {known.sum():,} accounts, median {median:+.1f} pts; {moved:,} "
            "Tier 1/2 accounts sent to self-serve (a touch adds little)"
            + ("; empty (not identifiable) in "
               + ", ".join(f"{seg} ({n:,})" for seg, n in empty.items()) if len(empty) else ""))


def _contact(r) -> str:
    """Whom to call in a scored row and its lead bucket (:func:`pqlml.buyers.with_contacts`)."""
    import pandas as pd

    bucket = getattr(r, "lead_bucket", None)
    if bucket is None or pd.isna(bucket):
        return ""
    who = r.contact_user_id if isinstance(r.contact_user_id, str) else "nobody yet: find one"
    title = f"{r.contact_title}, " if isinstance(r.contact_title, str) else ""
    return f"{title}{who}\n{bucket} ({r.buyer_in_product:.0%} inside)"


def _feedback(console, project, out, page) -> None:
    import pandas as pd

    from .registry import champion
    from .report import Section
    from .track import in_project

    with in_project(project):
        found = champion(project.config.model.registered_name)
    accepted = runner.feedback(project, out / "feedback",
                               model=None if found is None else found[1],
                               status=status(console))
    fb, plot = accepted.feedback, accepted.plot
    top = fb.reasons.groupby("tier", observed=True).head(1).set_index("tier")
    rows = []
    pooled = fb.rates[fb.rates.period == "all"]
    for r in pooled[pooled.kind.isin(["tier", "score band"])].itertuples():
        reason = top.reason.get(r.group, "") if r.kind == "tier" else ""
        share = f" ({top.share[r.group]:.0%})" if reason else ""
        rows.append((r.kind, r.group, f"{r.entities:,}",
                     "-" if not r.entities else f"{r.accepted_rate:.0%}",
                     "" if not r.entities else f"{r.accepted_low:.0%}-{r.accepted_high:.0%}",
                     reason + share))
    console.print(_table(f"{fb.dispositions:,} simulated dispositions ({len(fb.not_attached):,} fit no "
                         f"snapshot); acceptance = accepted or converted (plot: {plot})",
                         ["kind", "group", "leads", "accepted", "95% Wilson", "top rejection reason"],
                         rows))
    page.sections.append(Section("9. The sales feedback loop: acceptance per tier and score band", [
        pd.DataFrame(rows, columns=["kind", "group", "leads", "accepted", "95% Wilson",
                                    "top rejection reason"]), Path(plot)]))


def _retrain_and_drift(console, project, out, page) -> None:
    from .report import Section

    with periods(console, "   retrain", "period {i}/{n}, {as_of}") as advance:
        retrained = runner.retrain(project, out / "retrain", progress=advance)
    decision, registered = retrained.decision, retrained.registered
    name = project.config.model.registered_name
    console.print(f"   {decision.action.replace('_', ' ')}: {decision.reason}")
    if registered:
        console.print(f"   registered {name} version {registered[0]} as @{registered[1]}")
    drifted = runner.drift(project, out / "drift", status=status(console))
    table, summary, version = drifted.table, drifted.summary, drifted.champion_version
    top = table[table.feature != "score"].head(3)
    console.print(f"   drift of {name}@champion (version {version}) at {summary['as_of']} vs its "
                  f"training window: score PSI {summary['psi_score']:.3f}; largest: "
                  + ", ".join(f"{r.feature} {r.psi:.2f}" for r in top.itertuples())
                  + f" ({out / 'drift' / 'drift.png'})")
    page.numbers["retraining"] = decision.action.replace("_", " ")
    page.sections.append(Section("7. Monthly retraining and drift", [
        f"{decision.action.replace('_', ' ')}: {decision.reason}",
        f"Drift of {name}@champion at {summary['as_of']}: score PSI {summary['psi_score']:.3f}.",
        table.head(10).round(3), out / "drift" / "drift.png"]))
    uri = retrained.store
    from .store import local_db
    db = local_db(uri)
    ui = f"`make ui STORE={db}` or " if db is not None else ""
    console.print(f"   MLflow store: {uri} (runs: retrain {retrained.run_id}, drift "
                  f"{drifted.run_id}); look with {ui}`mlflow ui --backend-store-uri {uri}`; "
                  f"serve the champion with `mlflow models serve -m models:/{name}@champion "
                  f"--env-manager local`")


def _show_backtest(console, metrics, out, page) -> None:
    from .backtest import comparison_table
    from .report import Section

    names = [n for n in ("model", "rules", "best_single_rule", "activation_engagement", "oracle")
             if n in metrics]
    console.print(_table(f"{len(metrics['folds'])} monthly folds, {metrics['rules']['volume']:,} "
                         f"touches (the rules' volume); report: {out / 'backtest' / 'report.html'}",
                         ["", "ROC-AUC", "ECE", "converters found", "per 100 touches"],
                         [(n.replace("_", " "),
                           f"{metrics[n]['roc_auc']:.3f}" if "roc_auc" in metrics[n] else "-",
                           f"{metrics[n]['ece']:.4f}" if "ece" in metrics[n] else "-",
                           f"{metrics[n]['converters_captured']:,}",
                           f"{metrics[n]['converters_per_100_touches']:.1f}") for n in names]))
    for n in ("model", "rules"):
        if "roc_auc" in metrics.get(n, {}):
            page.numbers[f"{n} ROC-AUC"] = f"{metrics[n]['roc_auc']:.3f}"
    if "rules" in metrics:
        page.numbers["converters found: model vs rules"] = (
            f"{metrics['model']['converters_captured']:,} vs {metrics['rules']['converters_captured']:,}")
    page.sections.append(Section("6. The model vs the rules, forward in time", [
        comparison_table(metrics), out / "backtest" / "gains.png",
        out / "backtest" / "calibration.png"]))


_HOW = ["Each numbered section is one step of the flow, in order: the data, features and "
        "labels, today's hand-set rules, signal discovery, a model backtested against the "
        "rules, retraining and drift, scores for sales and the sales feedback loop.",
        "The company is simulated with a known truth (last section), so what the steps find "
        "can be checked against it.",
        "Rates come with 95% intervals; ROC-AUC is 0.5 for chance and 1 for a perfect "
        "ranking; converters found are counted at the rules' volume, the same number of "
        "touches for every ranking.",
        "Discovery writes its own report.html in signals/, the backtest (when it ran) in "
        "backtest/."]


def _table(title, columns, rows):
    from rich.table import Table

    grid = Table(*columns, title=title)
    for row in rows:
        grid.add_row(*row)
    return grid
