"""The backtest's report: ``metrics.json``, ``report.md`` and the plots, and the model's
tiers on the test rows (:func:`model_intent`) that the report compares with the rules'."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..tiers import TIERS, TierPolicy
from ._plots import calibration_plot, gains_plot, tier_plot
from ..outputs import save_figure, write_json, write_text
from ..report import REPORT_NAME, Page, Section

__all__ = ["model_intent", "tier_table", "write_report", "backtest_page", "comparison_table"]

BASELINE_TEXT = {
    "generic_logistic": "baseline: a logistic regression on log1p per-event counts (last 30 "
                        "days and the 30 before), active users now and a month earlier, "
                        "headcount and vertical, fitted on each fold's training rows",
    "rfm_logistic": "baseline: a recency / frequency / monetary logistic regression (days "
                    "since the last event, events over the longest window, property sums "
                    "when configured, account age), fitted on each fold's training rows"}


def model_intent(rows: pd.DataFrame, policy: TierPolicy) -> pd.Series:
    """The model's high-intent flag per test row (``p_model``), period by period (``fold``),
    as scoring would have set it then: ``policy``'s cutpoint of that period's probabilities,
    at the rules' volume there (``rule_flag``; none: a user model whose rule reads account
    features, the capacity). Never a period's labels (see :mod:`pqlml.tiers`)."""
    flags = pd.Series(False, index=rows.index, name="intent")
    for _, g in rows.groupby("fold"):
        volume = int(g.rule_flag.sum()) if "rule_flag" in g else None
        flags[g.index] = policy.intent(g.p_model, rule_volume=volume)
    return flags


def _policy(metrics: dict) -> TierPolicy:
    """The tier policy a backtest ran with, from its ``metrics``."""
    return TierPolicy(method=metrics["tier_method"], capacity=metrics["capacity"],
                      precision_target=metrics["precision_target"])


def tier_table(rows: pd.DataFrame, policy: TierPolicy) -> pd.DataFrame:
    """The tiers of the test rows: ``model`` (its intent by ``policy``) and, with a rule,
    ``rules`` (its flags), both crossed with ``fit``."""
    tiers = pd.DataFrame({"model": policy.tiers(model_intent(rows, policy), rows.fit)})
    if "rule_flag" in rows:
        tiers["rules"] = policy.tiers(rows.rule_flag.astype(bool), rows.fit)
    return tiers


#: What :func:`write_report` writes into its folder.
REPORT_FILES = ("metrics.json", "report.md", REPORT_NAME, "gains.png", "calibration.png",
                "tiers.png")
#: The rankings a report compares, in its columns' order.
RANKINGS = ("model", "rules", "best_single_rule", "activation_engagement", "generic_logistic",
            "rfm_logistic", "oracle")


def write_report(metrics: dict, rows: pd.DataFrame, out: str | Path) -> Path:
    """``metrics.json``, ``report.md``, ``report.html`` (:func:`backtest_page`) and the
    plots (gains, calibration, tiers) in ``out``."""
    out = Path(out)
    write_json(metrics, out / "metrics.json")
    outcome = metrics["outcome"]
    tiers = tier_table(rows, _policy(metrics))
    tiers[outcome] = rows[outcome]
    figures = {"gains": gains_plot(rows, outcome), "calibration": calibration_plot(rows, outcome),
               "tiers": tier_plot(tiers, outcome)}
    for name, fig in figures.items():
        save_figure(fig, out / f"{name}.png")
    write_text(_markdown(metrics, tiers, outcome), out / "report.md")
    backtest_page(metrics, tiers, figures).write(out / REPORT_NAME)
    return out


def _value(block: dict, key: str) -> str:
    """``block[key]`` with its CI (``<key>_ci``) when there is one; "" when absent."""
    v = block.get(key)
    if v is None:
        return ""
    ci = block.get(f"{key}_ci")
    text = f"{v:.3f}" if isinstance(v, float) else f"{v:,}"
    return text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and not isinstance(v, int)
                   else (f" [{ci[0]:.0f}, {ci[1]:.0f}]" if ci else ""))


def backtest_page(m: dict, tiers: pd.DataFrame, figures: dict) -> Page:
    """The backtest's page: ROC-AUC with CIs and converters captured of the model, the
    rules and the baselines first; the comparison, per-fold and per-tier tables; the
    ``figures`` (title -> matplotlib figure: gains, calibration, tiers)."""
    outcome, entity = m["outcome"], m.get("entity", "account")
    names = [n for n in RANKINGS if n in m]
    found = {"conversion": "converters", "hand_raise": "hand-raisers",
             "accepted": "accepted leads"}.get(outcome, outcome)
    numbers = {f"{n.replace('_', ' ')} ROC-AUC (95% CI)": _value(m[n], "roc_auc")
               for n in names if "roc_auc" in m[n]}
    numbers |= {f"{found} captured by the {n.replace('_', ' ')}": f"{m[n]['converters_captured']:,}"
                for n in ("model", "rules", "best_single_rule") if n in m}
    volume = ("the rules' volume" if m.get("volume_from", "rules") == "rules" else
              f"the sales capacity ({m['capacity']} a period)")
    how = [f"Every ranking is tested forward in time: trained on earlier months, scored on "
           f"{len(m['folds'])} later ones (a gap of at least {m['horizon_days']} days, the label "
           f"horizon), all on the same test rows.",
           "ROC-AUC: how often a random converter ranks above a random non-converter (0.5 is "
           "chance, 1 perfect). Brackets are 95% confidence intervals from a bootstrap "
           f"over {entity}s: two rankings whose intervals overlap much may not differ.",
           f"Converters captured: how many {found} each ranking would have sent to sales at "
           f"{volume}, the same number of touches for all.",
           "Gains: the share of converters found against the share contacted (higher is "
           "better). Calibration: predicted against observed rates (on the diagonal is "
           "right)."]
    table = comparison_table(m)
    aucs = [n for n in ("model", *BASELINE_TEXT, "oracle") if n in m]
    folds = pd.DataFrame([
        {"fold": f["fold"], "as of": f["as_of"]}
        | {f"{n} AUC": f"{f[n].get('roc_auc', float('nan')):.3f}" for n in aucs}
        | {"rules captured": f["rules"]["converters_captured"] if "rules" in f else "-",
           "model captured": f["model"]["converters_captured"],
           "best single rule": f["best_rule"]} for f in m["folds"]])
    notes = [BASELINE_TEXT[n] for n in BASELINE_TEXT if n in m] + list(m.get("notes", []))
    rule = [f"The rules' intent: {m['intent_rule']}."] if m.get("intent_rule") else []
    sections = [Section("Model vs rules vs baselines, pooled over the folds",
                        [table, *rule, *notes]),
                Section("Gains: converters found per share of accounts contacted",
                        [figures["gains"]]),
                Section("Calibration", [figures["calibration"]]),
                Section(f"Conversion per tier (tiers.method = {m['tier_method']})",
                        [_tier_rates(tiers, outcome), figures["tiers"]]),
                Section("Per fold", [folds])]
    return Page(f"Backtest: {m['kind']} {entity} model vs the rules ({outcome})", numbers, how,
                sections, subtitle=f"pqlml backtest: {len(m['folds'])} forward folds.")


def comparison_table(m: dict) -> pd.DataFrame:
    """One row per metric (ROC-AUC, PR-AUC, Brier, ECE, volume, converters captured and per
    100 touches), one column per ranking, each value with its 95% CI."""
    return pd.DataFrame({"": list(_KEYS)} | {n.replace("_", " "): [_value(m[n], k) for k in _KEYS]
                                             for n in RANKINGS if n in m})


_KEYS = ("roc_auc", "pr_auc", "brier", "ece", "volume", "converters_captured",
         "converters_per_100_touches")


def _tier_rates(tiers: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Per tier: its size and conversion rate, by the model's and the rules' tiers."""
    rows = []
    for t in TIERS:
        row = {"tier": t}
        for w in (w for w in ("model", "rules") if w in tiers):
            part = tiers[tiers[w] == t][outcome]
            row |= {f"{w} n": f"{len(part):,}",
                    f"{w} rate": f"{part.mean():.1%}" if len(part) else "empty"}
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(m: dict, tiers: pd.DataFrame, outcome: str) -> str:
    fmt = _value
    names = [n for n in RANKINGS if n in m]
    keys = _KEYS
    entity = m.get("entity", "account")
    volume = ("the rules' volume" if m.get("volume_from", "rules") == "rules" else
              f"the sales capacity ({m['capacity']} a period)")
    rule = f"Rule: `{m['intent_rule']}`. " if m.get("intent_rule") else ""
    lines = [f"# Backtest: {m['kind']} {entity} model vs the rules ({outcome})", "",
             f"{rule}{len(m['folds'])} forward folds, gap >= {m['horizon_days']} days; pooled "
             f"figures with 95% {entity}-bootstrap CIs; converters captured at {volume} in each "
             "period; every ranking on the same test rows.", ""]
    lines += [f"- {name}: {BASELINE_TEXT[name]}" for name in BASELINE_TEXT if name in m]
    lines += [f"- {note}" for note in m.get("notes", [])] + ([""] if m.get("notes") else [])
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(fmt(m[n], k) for n in names) + " |")
    aucs = [n for n in ("model", *BASELINE_TEXT, "oracle") if n in m]
    lines += ["", "| fold | as_of | " + " | ".join(f"{n} AUC" for n in aucs) + " | rules captured "
              "| model captured | best single captured | best single rule |",
              "|---|---|" + "---|" * (len(aucs) + 4)]
    for f in m["folds"]:
        rules = f["rules"]["converters_captured"] if "rules" in f else "-"
        auc = " | ".join(f"{f[n].get('roc_auc', float('nan')):.3f}" for n in aucs)
        lines.append(f"| {f['fold']} | {f['as_of']} | {auc} | {rules} | "
                     f"{f['model']['converters_captured']} | "
                     f"{f['best_single_rule']['converters_captured']} | `{f['best_rule']}` |")
    who = [w for w in ("model", "rules") if w in tiers]
    lines += ["", f"Conversion per tier, the same labels: intent from the model (cutpoint by "
              f"tiers.method = {m['tier_method']})" + (" vs from the rule:" if "rules" in who
                                                       else ":"), "",
              "| tier | " + " | ".join(f"{w} n | {w} rate" for w in who) + " |",
              "|---|" + "---|---|" * len(who)]
    for t in TIERS:
        cells = []
        for w in who:
            part = tiers[tiers[w] == t][outcome]
            cells += [f"{len(part):,}", f"{part.mean():.1%}" if len(part) else "empty"]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "![gains](gains.png) ![calibration](calibration.png) ![tiers](tiers.png)", ""]
    return "\n".join(lines)
