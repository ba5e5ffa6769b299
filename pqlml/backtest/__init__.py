"""Forward-in-time backtests: the model against the rules at the same sales volume.

Folds are rolling origins over the snapshot dates: each of the last
``model.test_periods`` as_of dates is a test period, and its model is trained on
the snapshots whose label window had closed by then (``as_of + horizon <= test
as_of``: a gap of at least the horizon, nothing shuffled). In every fold the
configured rule (``tiers.intent_rule``) flags some accounts; the model is scored
at that same volume (its top ones), and so is the best single-threshold signal
chosen on the fold's training data (the strongest honest baseline). With activation
checkpoints and engagement weights configured, the "activated, then ranked by
engagement" playbook is scored the same way. On a simulated company the truth's
probabilities give the oracle.

Examples
--------
>>> rolling_folds(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"], horizon_days=28,
...               test_periods=2, min_train=1)
[(['2024-01-01', '2024-02-01'], '2024-03-01'), (['2024-01-01', '2024-02-01', '2024-03-01'], '2024-04-01')]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..discover._scan import candidates, scan
from ..errors import PqlmlError
from ..model import (Model, bootstrap_cis, capacity_cutpoint, feature_columns, model_tiers,
                     precision_cutpoint, score_metrics, top_k_capture, training_frame)
from ..rules import Rule, fit_flags, with_attributes
from ._plots import calibration_plot, gains_plot, tier_plot

__all__ = ["rolling_folds", "training_dates", "backtest", "model_intent", "write_report"]

MIN_POSITIVES = 10


def training_dates(dates, horizon_days: int, until) -> list:
    """The ``dates`` whose label window ``(as_of, as_of + horizon]`` closed by ``until``.

    Examples
    --------
    >>> training_dates(["2024-01-01", "2024-02-01", "2024-03-01"], 28, "2024-03-01")
    ['2024-01-01', '2024-02-01']
    """
    limit = pd.Timestamp(until) - pd.Timedelta(days=horizon_days)
    return [d for d in dates if pd.Timestamp(d) <= limit]


def rolling_folds(as_of_dates, *, horizon_days: int, test_periods: int, min_train: int = 3):
    """(training as_of dates, test as_of) pairs, oldest test first."""
    if horizon_days < 1:
        raise PqlmlError(f"The 'horizon_days' parameter of rolling_folds must be at least 1 "
                         f"(a label window of 0 days would let training see the test date). "
                         f"Got {horizon_days!r} instead.")
    dates = sorted({str(pd.Timestamp(d).date()) for d in as_of_dates})
    out = []
    for test in dates[-test_periods:]:
        train = training_dates(dates, horizon_days, test)
        if len(train) >= min_train:
            out.append((train, test))
    if not out:
        raise PqlmlError(f"No backtest fold has {min_train} training dates whose "
                         f"{horizon_days}-day label window closed before a test date among "
                         f"{len(dates)} snapshot dates ({dates[0]} .. {dates[-1]}). Fix: a "
                         f"longer schedule, or fewer model.test_periods.")
    return out


def _rule_probability(flag_train, y_train, flag_test):
    """A rule as a calibrated step score: its training precision for flagged rows, the
    training rate of the rest for the others."""
    hit = y_train[flag_train].mean() if flag_train.any() else 0.0
    miss = y_train[~flag_train].mean() if (~flag_train).any() else 0.0
    return np.where(flag_test, hit, miss)


def _best_single(train: pd.DataFrame, outcome: str, features, cfg) -> pd.Series:
    """The training data's best threshold rule (highest phi among significant ones with
    support >= 20): its ``feature``, ``threshold`` and ``rule``."""
    cands, _ = candidates(train, features, cfg.discover.counts, cfg.discover.quantiles,
                          cfg.features.windows)
    table = scan(train, outcome, cands)
    table = table[(table.q_value <= cfg.discover.alpha) & (table.support >= 20)]
    if table.empty:
        raise PqlmlError("No single-threshold rule is significant on a fold's training data. "
                         "Fix: train on a longer schedule.")
    best = table.sort_values("phi", ascending=False).iloc[0]
    return best


def _oracle(project, rows: pd.DataFrame, outcome: str) -> np.ndarray | None:
    truth = Path(project.config.data.root) / "truth" / "snapshots.parquet"
    column = {"conversion": "p_convert", "hand_raise": "p_hand_raise"}.get(outcome)
    if column is None or not truth.exists():
        return None
    t = pd.read_parquet(truth, columns=["account_id", "as_of", column])
    t["as_of"] = pd.to_datetime(t.as_of, utc=True).astype(rows.as_of.dtype)
    p = rows[["account_id", "as_of"]].merge(t, on=["account_id", "as_of"], how="left")[column]
    return None if p.isna().any() else p.to_numpy(float)


def backtest(config, *, kind: str | None = None, outcome: str | None = None,
             progress=None) -> tuple[dict, pd.DataFrame]:
    """Run every fold; return (metrics, the pooled test rows with every score)."""
    project, frame, outcome = training_frame(config, outcome)
    cfg = project.config
    if not cfg.tiers.intent_rule:
        raise PqlmlError("The backtest compares the model with the rules at the rules' volume, "
                         "but tiers.intent_rule is empty. Fix: name a rule in [rules], e.g. "
                         'intent_rule = "folk_pqa".')
    kind = kind or cfg.model.kind
    features = feature_columns(frame)
    rule = Rule.parse(cfg.tiers.intent_rule, cfg.rules[cfg.tiers.intent_rule])
    folds = rolling_folds(frame.as_of.dt.strftime("%Y-%m-%d"), horizon_days=cfg.labels.horizon_days,
                          test_periods=cfg.model.test_periods)
    parts, fold_info = [], []
    for i, (train_dates, test_date) in enumerate(folds):
        if progress:
            progress(i, len(folds), test_date)
        day = frame.as_of.dt.strftime("%Y-%m-%d")
        train, test = frame[day.isin(train_dates)], frame[day == test_date].copy()
        _check_fold(train, test, outcome, test_date)
        model = Model.fit(train, outcome, kind=kind, features=features,
                          calibration=cfg.model.calibration)
        test["p_model"] = model.predict(test)
        flag_train, flag_test = rule.evaluate(train).to_numpy(), rule.evaluate(test).to_numpy()
        test["rule_flag"] = flag_test
        test["p_rules"] = _rule_probability(flag_train, train[outcome].to_numpy(bool), flag_test)
        best = _best_single(train, outcome, features, cfg)
        value = {n: pd.to_numeric(d[best.feature], errors="coerce") for n, d in
                 (("train", train), ("test", test))}
        # ranked by the signal's value (its threshold moved to the rules' volume) and, for the
        # probability figures, as a step score like the rules
        test["best_single_score"] = value["test"].fillna(-np.inf)
        test["p_best"] = _rule_probability((value["train"] >= best.threshold).to_numpy(),
                                           train[outcome].to_numpy(bool),
                                           (value["test"] >= best.threshold).to_numpy())
        best_rule = best.rule
        if {"activated", "engagement_score"} <= set(test.columns):
            # the activation + engagement playbook: activated accounts first, each group ranked
            # by engagement; its probability is the training rate of its group, like the rules'
            test["act_score"] = test.activated * 1e12 + test.engagement_score.fillna(0)
            test["p_act"] = _rule_probability(train.activated.to_numpy(bool),
                                              train[outcome].to_numpy(bool),
                                              test.activated.to_numpy(bool))
        test["fold"] = i
        parts.append(test)
        fold_info.append({"fold": i, "as_of": test_date, "train_as_of": [train_dates[0],
                                                                          train_dates[-1]],
                          "train_rows": len(train), "train_positives": int(train[outcome].sum()),
                          "best_rule": best_rule})
    rows = pd.concat(parts, ignore_index=True)
    oracle = _oracle(project, rows, outcome)
    rows["p_oracle"] = np.nan if oracle is None else oracle
    rows["fit"] = fit_flags(with_attributes(rows, project), cfg.fit)["fit"].to_numpy()
    metrics = _metrics(rows, outcome, fold_info, cfg)
    metrics |= {"outcome": outcome, "kind": kind, "horizon_days": cfg.labels.horizon_days,
                "intent_rule": cfg.rules[cfg.tiers.intent_rule], "capacity": cfg.capacity.per_period,
                "tier_method": cfg.tiers.method, "precision_target": cfg.tiers.precision_target}
    return metrics, rows


def _check_fold(train, test, outcome, test_date):
    for name, part in (("training", train), ("test", test)):
        pos = int(part[outcome].sum())
        if pos < MIN_POSITIVES or pos == len(part):
            raise PqlmlError(f"Fold testing {test_date}: the {name} data has {pos:,} positives "
                             f"of {len(part):,} snapshots (need >= {MIN_POSITIVES} and both "
                             f"classes). Fix: a longer schedule or fewer model.test_periods.")


def _captured(y, ranking, flags, periods, idx) -> int:
    """Converters found when each period's best-ranked rows are contacted, as many per
    period as the rules flag there (the rules' volume)."""
    y, ranking, flags, periods = y[idx], ranking[idx], flags[idx], periods[idx]
    return sum(top_k_capture(y[periods == f], ranking[periods == f], int(flags[periods == f].sum()))
               for f in np.unique(periods))


def _block(data: pd.DataFrame, outcome: str, p: str | None, ranking: str, reps: int) -> dict:
    """The figures of one ranking on ``data`` (probabilities ``p``, ranked by ``ranking``) at
    the rules' volume; with ``reps``, bootstrap CIs over accounts."""
    y = data[outcome].to_numpy(int)
    prob = None if p is None else data[p].to_numpy(float)
    rank = data[ranking].to_numpy(float)
    flags, periods = data.rule_flag.to_numpy(bool), data.fold.to_numpy()

    def figures(i):
        out = score_metrics(y[i], prob[i]) if prob is not None else {}
        out["converters_captured"] = _captured(y, rank, flags, periods, i)
        return out
    out = figures(np.arange(len(y)))
    out["volume"] = int(flags.sum())
    out["converters_per_100_touches"] = 100 * out["converters_captured"] / max(out["volume"], 1)
    if reps:
        cis = bootstrap_cis(figures, data.account_id.to_numpy(), reps=reps)
        out |= {f"{k}_ci": v for k, v in cis.items() if k != "log_loss"}
    return out


_RANKINGS = {"model": ("p_model", "p_model"), "rules": ("p_rules", "rule_flag"),
             "best_single_rule": ("p_best", "best_single_score"),
             "activation_engagement": ("p_act", "act_score"),
             "oracle": ("p_oracle", "p_oracle")}


def _metrics(rows: pd.DataFrame, outcome: str, folds: list, cfg) -> dict:
    """Pooled figures with CIs, the same per fold, and capture / lift at sales capacity."""
    rows = rows.assign(rule_flag=rows.rule_flag.astype(bool))
    names = [n for n in _RANKINGS if (n != "oracle" or rows.p_oracle.notna().all())
             and (n != "activation_engagement" or "act_score" in rows)]

    def blocks(data, reps):
        return {n: _block(data, outcome, *_RANKINGS[n], reps) for n in names}
    out = blocks(rows, cfg.model.bootstrap)
    k, y = cfg.capacity.per_period, rows[outcome].to_numpy(int)
    for name in ("model", "oracle"):
        if name in out:
            col = _RANKINGS[name][1]
            got = sum(top_k_capture(g[outcome].to_numpy(), g[col].to_numpy(), min(k, len(g)))
                      for _, g in rows.groupby("fold"))
            touched = sum(min(k, len(g)) for _, g in rows.groupby("fold"))
            out[name]["capture_at_capacity"] = got / max(int(y.sum()), 1)
            out[name]["lift_at_capacity"] = (got / max(touched, 1)) / y.mean()
    out["folds"] = [dict(info, **blocks(g, 0)) for info, (_, g) in zip(folds, rows.groupby("fold"))]
    return out


def model_intent(rows: pd.DataFrame, outcome: str, method: str, capacity: int,
                 precision_target: float) -> pd.Series:
    """The model's high-intent flag per test row, period by period, by ``tiers.method``:
    ``capacity`` (the top ``capacity`` per period), ``rules`` / ``match_rules`` (as many as
    the rule flags that period) or ``precision`` (the lowest cutpoint whose flagged set
    converted at ``precision_target`` in the earlier test periods; the rules' volume for the
    first, which has no earlier period: never the period's own labels)."""
    flags = pd.Series(False, index=rows.index)
    for f, g in rows.groupby("fold"):
        if method == "capacity":
            cut = capacity_cutpoint(g.p_model, min(capacity, len(g)))
        elif method == "precision" and (rows.fold < f).any():
            seen = rows[rows.fold < f]
            cut = precision_cutpoint(seen[outcome], seen.p_model, precision_target)
        else:
            cut = capacity_cutpoint(g.p_model, int(g.rule_flag.sum()))
        flags[g.index] = g.p_model >= cut
    return flags


def write_report(metrics: dict, rows: pd.DataFrame, out: str | Path) -> Path:
    """``metrics.json``, ``report.md`` and the plots (gains, calibration, tiers) in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_jsonable))
    outcome = metrics["outcome"]
    gains_plot(rows, outcome, out / "gains.png")
    calibration_plot(rows, outcome, out / "calibration.png")
    fit = rows.fit.astype(bool)
    intent = model_intent(rows, outcome, metrics["tier_method"], metrics["capacity"],
                          metrics["precision_target"])
    tiers = pd.DataFrame({"model": model_tiers(intent.astype(float), fit, cutpoint=0.5),
                          "rules": model_tiers(rows.rule_flag.astype(float), fit, cutpoint=0.5),
                          outcome: rows[outcome]})
    tier_plot(tiers, outcome, out / "tiers.png")
    (out / "report.md").write_text(_markdown(metrics, tiers, outcome))
    return out


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return str(v)


def _markdown(m: dict, tiers: pd.DataFrame, outcome: str) -> str:
    def fmt(block, key):
        v = block.get(key)
        if v is None:
            return ""
        ci = block.get(f"{key}_ci")
        text = f"{v:.3f}" if isinstance(v, float) else f"{v:,}"
        return text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and not isinstance(v, int)
                       else (f" [{ci[0]:.0f}, {ci[1]:.0f}]" if ci else ""))
    names = [n for n in ("model", "rules", "best_single_rule", "activation_engagement", "oracle")
             if n in m]
    keys = ("roc_auc", "pr_auc", "brier", "ece", "volume", "converters_captured",
            "converters_per_100_touches")
    lines = [f"# Backtest: {m['kind']} model vs the rules ({outcome})", "",
             f"Rule: `{m['intent_rule']}`. {len(m['folds'])} forward folds, gap >= "
             f"{m['horizon_days']} days; pooled figures with 95% account-bootstrap CIs; "
             "converters captured at the rules' volume in each period.", "",
             "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(fmt(m[n], k) for n in names) + " |")
    lines += ["", "| fold | as_of | model AUC | rules captured | model captured | best single "
              "captured | best single rule |", "|---|---|---|---|---|---|---|"]
    for f in m["folds"]:
        lines.append(f"| {f['fold']} | {f['as_of']} | {f['model'].get('roc_auc', float('nan')):.3f} | "
                     f"{f['rules']['converters_captured']} | {f['model']['converters_captured']} | "
                     f"{f['best_single_rule']['converters_captured']} | `{f['best_rule']}` |")
    lines += ["", f"Conversion per tier, the same labels: intent from the model (cutpoint by "
              f"tiers.method = {m['tier_method']}) vs from the rule:", "", "| tier | model n | model rate | rules n | rules rate |",
              "|---|---|---|---|---|"]
    for t in ("tier_1", "tier_2", "tier_3", "self_serve"):
        cells = []
        for who in ("model", "rules"):
            part = tiers[tiers[who] == t][outcome]
            cells += [f"{len(part):,}", f"{part.mean():.1%}" if len(part) else "empty"]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "![gains](gains.png) ![calibration](calibration.png) ![tiers](tiers.png)", ""]
    return "\n".join(lines)
