"""What later stages would refuse, found before they run: the checks of ``pqlml validate``.

Opening a project checks the tables (:mod:`pqlml.validate`, :mod:`pqlml.identity`). A
config can still pass that and fail a stage later: a schedule that leaves the data, a
horizon no snapshot can close, a rule naming a feature the catalog does not have. Each
check here calls the code the stage itself runs, so the message is the stage's own:

* the schedule against the data's range (:func:`pqlml.snapshots.check_as_of`);
* the horizon: snapshots whose label window closes within the data, and enough of them
  for the backtest's folds (:func:`pqlml.backtest.rolling_folds`);
* the target outcome: some labelled snapshot is positive;
* every rule, the funnel conditions and the intent rule, evaluated on the catalog's
  columns (one entity's features, so no full build);
* ``[outcomes] values`` naming nothing in the data (a warning: a typo maps nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .errors import PqlmlError

__all__ = ["Preflight", "preflight"]


@dataclass
class Preflight:
    """``problems``: what a later stage would refuse (each the stage's own message);
    ``warnings``: what is allowed but likely a mistake; ``facts``: what was checked."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    def raise_if_any(self) -> None:
        """A :class:`~pqlml.errors.PqlmlError` listing every problem, if there is one."""
        if self.problems:
            raise PqlmlError(f"{len(self.problems)} problem(s) a later stage would refuse:\n- "
                             + "\n- ".join(self.problems))


def preflight(project) -> Preflight:
    """Run every check of the module docstring on an open project."""
    out = Preflight()
    dates = _schedule(project, out)
    if dates:
        _horizon(project, dates, out)
    if project.config.project.entity == "account":
        _rules(project, dates, out)
    else:
        _user_rules(project, dates, out)
    _outcome_values(project, out)
    return out


def _schedule(project, out: Preflight) -> list:
    from .snapshots import check_as_of, schedule_dates

    try:
        dates = schedule_dates(project.config.schedule)
        check_as_of(dates, project.data_start, project.data_end)
    except PqlmlError as err:
        out.problems.append(str(err))
        return []
    out.facts.append(f"schedule: {len(dates)} as_of dates, {dates[0]} .. {dates[-1]}, within "
                     f"the data ({project.data_start.date()} .. {project.data_end.date()})")
    return dates


def _horizon(project, dates: list, out: Preflight) -> None:
    from .backtest import rolling_folds, training_dates
    from .labels import no_labelled_snapshot
    from .project import build_labels

    cfg = project.config
    horizon = cfg.labels.horizon_days
    # the dates whose label window closes within the data: the snapshots labels leave uncensored
    labelled = training_dates(dates, horizon, project.data_end.tz_localize(None))
    if not labelled:
        out.problems.append(no_labelled_snapshot(horizon, project.data_end))
        return
    try:
        folds = rolling_folds([str(d) for d in labelled], horizon_days=horizon,
                              test_periods=cfg.model.test_periods)
        out.facts.append(f"labels: {len(labelled)} of {len(dates)} as_of dates have a closed "
                         f"{horizon}-day window; the backtest has {len(folds)} fold(s)")
    except PqlmlError as err:
        out.problems.append(str(err))
    target = cfg.outcomes.target
    y = build_labels(project, as_of=labelled)
    positives = int(pd.to_numeric(y[target], errors="coerce").fillna(0).sum()) \
        if target in y else 0
    if not positives:
        out.problems.append(
            f"No {target} in any label window of the schedule ({len(y):,} labelled snapshots): "
            f"a model has nothing to learn. Fix: check [outcomes] (the values that mean "
            f"{target}), or set outcomes.target to an outcome the data has.")
    else:
        out.facts.append(f"target {target}: {positives:,} positive of {len(y):,} labelled "
                         f"snapshots")


def _rules(project, dates: list, out: Preflight) -> None:
    from .backtest import NO_INTENT_RULE
    from .project import _keyed, project_features, spine_for
    from .rules import evaluate_rules, parse_rules
    from .rules._tiers import fit_flags, funnel_conditions

    cfg = project.config
    try:
        rules = parse_rules(cfg.rules)
    except PqlmlError as err:
        out.problems.append(str(err))
        return
    if not cfg.tiers.intent_rule:
        out.problems.append(NO_INTENT_RULE)
    # The catalog's columns from one entity's features: what the rules will be evaluated on.
    as_of = [dates[-1]] if dates else None
    try:
        spine = spine_for(project, as_of=as_of or [project.data_end.normalize().date()])
    except PqlmlError:
        return              # the schedule's own problem is reported already
    first = spine.order_by(["entity_id", "as_of"]).limit(1)
    frame = project.with_attributes(_keyed(project_features(project, first, "account"),
                                           "account"))
    for check in (lambda: evaluate_rules(rules, frame),
                  lambda: funnel_conditions(frame, cfg.funnels), lambda: fit_flags(frame, cfg.fit)):
        try:
            check()
        except PqlmlError as err:
            out.problems.append(str(err))
    out.facts.append(f"rules: {len(rules)} rule(s) and the funnel conditions name features of "
                     f"the catalog ({frame.shape[1] - 2} columns)")


def _user_rules(project, dates: list, out: Preflight) -> None:
    """A user project's rules name user features or its account's: evaluated on one user's
    features beside one account's, so a name in neither catalog is a problem here."""
    from .project import _keyed, project_features, spine_for
    from .rules import evaluate_rules, parse_rules

    try:
        rules = parse_rules(project.config.rules)
        as_of = [dates[-1]] if dates else [project.data_end.normalize().date()]
        frames = []
        for e in ("user", "account"):
            spine = (spine_for(project, as_of=as_of, entity=e)
                     .order_by(["entity_id", "as_of"]).limit(1))
            if spine.count().execute():     # a log of users alone has no account rows
                frames.append(_keyed(project_features(project, spine, e), e)
                              .reset_index(drop=True))
        frame = pd.concat(frames, axis=1) if frames else pd.DataFrame()
        evaluate_rules(rules, frame.loc[:, ~frame.columns.duplicated()])
    except PqlmlError as err:
        out.problems.append(str(err))


def _outcome_values(project, out: Preflight) -> None:
    values = project.config.outcomes.values
    if not values:
        return
    from .sources import read_table

    names = set(project.first_seen)
    data = project.config.data
    if data.outcomes is not None:          # the source's own values, before the mapping
        raw = read_table(project.con, data, "outcomes")
        column = data.outcomes.columns.get("outcome", "outcome")
        if column in raw.columns:
            names |= set(raw.select(v=raw[column].cast("string")).distinct()
                         .to_pyarrow()["v"].to_pylist())
    unknown = [k for k in values if k not in names]
    if unknown:
        out.warnings.append(f"[outcomes] values names {', '.join(map(repr, unknown))}, which "
                            f"{'is' if len(unknown) == 1 else 'are'} neither an event nor an "
                            f"outcome value in the data: {'it maps' if len(unknown) == 1 else 'they map'} "
                            f"nothing. Fix: check the spelling against the data.")
