"""Load ``pqlml.toml`` into :class:`Config`, checking every key and value."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import ConfigError
from ..schema import FIXED_VALUES, TABLES, property_columns
from ..tiers import METHODS
from ._frames import FRAME_KINDS, frame_label, is_frame
from ._model import (CapacityConfig, Config, CountFeature, SumFeature, DataConfig, DiscoverConfig,
                     FeaturesConfig, FitConfig, ModelConfig, OUTCOME_MAPPING, RetrainConfig, DriftConfig, TrackingConfig, ExportConfig,
                     ExperimentConfig,
                     FunnelsConfig, LabelsConfig, OutcomesConfig, PlaybookConfig, ProjectConfig,
                     ScheduleConfig, TableSource, TiersConfig, _frozen_map)
from ._model import UpliftConfig


def config_from_dict(raw: Mapping, base_dir: str | Path, path: str | Path | None = None) -> Config:
    """Build and validate a config from a dict shaped like ``pqlml.toml``.

    Parameters
    ----------
    raw : Mapping
        Sections, e.g. ``{"labels": {"horizon_days": 28}}``.
    base_dir : str or Path
        Folder that a relative or absent ``data.root`` is relative to.
    path : str or Path, optional
        The file ``raw`` came from, named in error messages.

    Returns
    -------
    Config

    Examples
    --------
    >>> config_from_dict({"labels": {"horizon_days": 14}}, ".").labels.horizon_days
    14
    """
    path = Path(path).resolve() if path is not None else None
    return _build_config(raw, Path(base_dir).expanduser().resolve(), path)


def load_config(path: str | Path) -> Config:
    r"""Load and validate a ``pqlml.toml`` project config.

    Parameters
    ----------
    path : str or Path
        The TOML file. A relative ``data.root`` is relative to its folder.

    Returns
    -------
    Config
        Frozen; ``Config.path`` is the absolute file path.

    Raises
    ------
    ConfigError
        If the file is missing or not TOML, a key is unknown, a value is
        invalid, or ``[data.events]`` is absent.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     toml = Path(tmp) / "pqlml.toml"
    ...     _ = toml.write_text('[data.events]\nsource = "events.parquet"\n'
    ...                         '[labels]\nhorizon_days = 14\n')
    ...     cfg = load_config(toml)
    >>> cfg.labels.horizon_days
    14
    >>> cfg.resolve(cfg.data.events.source).name
    'events.parquet'
    """
    path = Path(path).expanduser().resolve()
    cfg = config_from_dict(_read_toml(path), path.parent, path)
    if cfg.data.events is None and cfg.data.export is None:
        raise ConfigError(f"No [data.events] table in {path}: pqlml needs to know where the "
                          'product events are. Fix: add\n[data.events]\nsource = "events.parquet"\n'
                          'or, for a Segment / Amplitude / Mixpanel export,\n[data.export]\n'
                          'format = "segment"\nsource = "segment-logs/**/*.gz"')
    return cfg


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {path}. "
                          "Fix: pass the path of an existing pqlml.toml.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Invalid TOML in {path}: {exc}. Fix the syntax there "
                          '(e.g. strings need quotes: every = "month").') from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}. "
                          "Fix: pass a readable UTF-8 TOML file, e.g. pqlml.toml.") from exc


def _build_config(raw: Mapping, base_dir: Path, path: Path | None, src: str = "") -> Config:
    src = src or (str(path) if path is not None else "the config passed to config_from_dict")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config_from_dict needs a mapping of sections, as parsed from "
                          f"TOML. Got {_show(raw)} instead. Fix: e.g. {{'labels': {{...}}}}.")
    _check_keys(raw, _SECTIONS, "", src)
    kw: dict[str, Any] = {name: _build(cls, raw[name], name, src)
                          for name, cls in _SECTION_CLASSES.items() if name in raw}
    kw["data"] = _build_data(raw.get("data", {}), base_dir, src)
    if "rules" in raw:
        kw["rules"] = _str_map(raw["rules"], "rules", None, src)
    cfg = Config(**kw, path=path)
    _check_consistency(cfg, src)
    return cfg


# --- error messages ------------------------------------------------------------

_MISSING = object()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "nothing (the key is missing)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if not isinstance(value, (str, int, float, list, tuple, Mapping, dt.date, type(None))):
        return f"a {type(value).__module__}.{type(value).__qualname__}"   # a Series, an array
    text = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return f"a table {text}" if isinstance(value, Mapping) else text


def _bad(key: str, src: str, expected: str, fix: str, got: Any) -> ConfigError:
    return ConfigError(f"The '{key}' setting in {src} must be {expected}. "
                       f"Got {_show(got)} instead. Fix: e.g. {fix}.")


def _check_keys(raw: Mapping, allowed: tuple, where: str, src: str) -> None:
    prefix = f"{where}." if where else ""
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
            scope = f"in [{where}]" if where else "at the top level"
            raise ConfigError(f"Unknown key '{prefix}{key}' in {src}.{hint} "
                              f"Allowed keys {scope}: {', '.join(allowed)}.")


def _table(value: Any, where: str, src: str) -> Mapping:
    if isinstance(value, Mapping):
        return value
    raise _bad(where, src, "a table", f"[{where}]", value)


# --- values: a spec is (expected, fix, convert); convert raises ValueError -------

_Spec = tuple[str, str, Callable[[Any], Any]]


def _convert(spec: _Spec, value: Any, key: str, src: str) -> Any:
    expected, fix, convert = spec
    try:
        return convert(value)
    except ValueError:
        raise _bad(key, src, expected, fix, value) from None


def _when(ok: Callable[[Any], Any], out: Callable[[Any], Any] = lambda v: v):
    def convert(v: Any) -> Any:
        if not ok(v):
            raise ValueError(v)
        return out(v)
    return convert


def _is_int(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _is_date(v: Any) -> bool:
    is_iso = isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)
    return type(v) is dt.date or bool(is_iso)  # not datetime: a date is expected


def _choice(key: str, options: tuple[str, ...]) -> _Spec:
    listed = ", ".join(f'"{o}"' for o in options)
    return (f"one of {listed}", f'{key} = "{options[0]}"',
            _when(lambda v: isinstance(v, str) and v in options))


def _strings(fix: str) -> _Spec:
    is_list = lambda v: isinstance(v, list | tuple) and all(map(_is_text, v))  # noqa: E731
    return ("a list of non-empty strings", fix, _when(is_list, tuple))


def _date(fix: str) -> _Spec:
    # fromisoformat raises ValueError on e.g. "2024-02-30": _convert reports it.
    to_date = lambda v: v if type(v) is dt.date else dt.date.fromisoformat(v)  # noqa: E731
    return ("a date in YYYY-MM-DD format", fix, _when(_is_date, to_date))


_EVERY = r"month|week|[1-9][0-9]*d"
_POS_INT = _when(lambda v: _is_int(v, 1))
_NAT_INT = _when(lambda v: _is_int(v, 0))
_STR = _when(lambda v: isinstance(v, str))

_SPECS: dict[type, dict[str, _Spec]] = {
    ProjectConfig: {"name": ("a non-empty string", 'name = "acme"', _when(_is_text)),
                    "entity": _choice("entity", ("account", "user"))},
    DataConfig: {"root": ("a non-empty folder path (relative to the config file's folder)",
                          'root = "data"', _when(_is_text)),
                 "connection": ('an ibis connection URL, or "" to read files',
                                'connection = "duckdb:///warehouse.db"', _STR),
                 "memory_limit": ('a size such as "1GB" or "512MB" (DuckDB spills to disk '
                                  'beyond it), or "" for DuckDB\'s default, 80% of the RAM',
                                  'memory_limit = "1GB"',
                                  _when(lambda v: isinstance(v, str) and re.fullmatch(
                                      r"|[0-9]+(\.[0-9]+)? ?([KMGT]i?B)", v.strip(), re.I))),
                 "engine": _choice("engine", ("duckdb", "spark")),
                 "master": ('a Spark master URL: "local[N]", "local[*]" or "spark://host:port"',
                            'master = "spark://10.0.0.5:7077"',
                            _when(lambda v: isinstance(v, str) and re.fullmatch(
                                r"local(\[([1-9][0-9]*|\*)\])?|(spark|yarn|k8s)://\S+|yarn", v))),
                 "spark": None},
    OutcomesConfig: {
        "hand_raise_events": _strings('hand_raise_events = ["demo_requested"]'),
        "conversion_events": _strings('conversion_events = ["plan_upgraded"]'),
        "target": _choice("target", ("conversion", "hand_raise", "accepted")),
        "values": None},
    ScheduleConfig: {
        "start": _date("start = 2024-02-01"),
        "end": _date("end = 2025-06-01"),
        "every": ('"month", "week" or "<N>d" with N a positive integer', 'every = "14d"',
                  _when(lambda v: isinstance(v, str) and re.fullmatch(_EVERY, v)))},
    LabelsConfig: {"horizon_days": ("a positive integer (days)", "horizon_days = 28", _POS_INT),
                   "exclude_prior_positives": ("true or false", "exclude_prior_positives = false",
                                               _when(lambda v: isinstance(v, bool)))},
    FitConfig: {
        "industries": _strings('industries = ["software", "fintech"]'),
        "employees_min": ("an integer >= 0", "employees_min = 50", _NAT_INT),
        "employees_max": ("an integer >= 0 (leave it out for no maximum)",
                          "employees_max = 5000", _NAT_INT),
        "countries": _strings('countries = ["US", "GB"]'),
        "require_work_email": ("true or false", "require_work_email = true",
                               _when(lambda v: isinstance(v, bool)))},
    TiersConfig: {
        "intent_rule": ('the name of a rule in [rules], or ""', 'intent_rule = "folk_pqa"', _STR),
        "method": _choice("method", METHODS),
        "precision_target": ("a number strictly between 0 and 1", "precision_target = 0.2",
                             _when(lambda v: _is_number(v) and 0 < v < 1, float))},
    FeaturesConfig: {
        "events": _strings('events = ["task_created", "invite_sent"]'),
        "windows": ("a list of distinct positive integers (days) that includes 30",
                    "windows = [7, 30, 90]",
                    _when(lambda v: isinstance(v, list | tuple) and all(_is_int(w, 1) for w in v)
                          and 30 in v and len(set(v)) == len(v), lambda v: tuple(sorted(v)))),
        "event_growth": ("true or false", "event_growth = false", _when(lambda v: isinstance(v, bool))),
        "active_users_events": _strings('active_users_events = ["invite_sent"]'),
        "buyer_titles": _strings('buyer_titles = ["vp", "head of", "director"]'),
        "counts": None,
        "sums": None,
        "activation": ('a list of "<event> >= <n>" strings, in funnel order',
                       'activation = ["board_created >= 1", "invite_sent >= 1"]',
                       _when(lambda v: isinstance(v, list | tuple) and all(
                           isinstance(x, str) and re.fullmatch(r"\s*[A-Za-z_][\w.:$-]*\s*>=\s*[1-9][0-9]*\s*", x)
                           for x in v), tuple)),
        "activation_within_days": ("a positive integer (days)", "activation_within_days = 14",
                                   _POS_INT),
        "engagement_weights": ("a table of event name = number",
                               "engagement_weights = {task_created = 1, invite_sent = 5}",
                               _when(lambda v: isinstance(v, dict) and v and all(
                                   isinstance(k, str) and k and _is_number(x) for k, x in v.items()),
                                   lambda v: _frozen_map({k: float(x) for k, x in v.items()}))),
        "engagement_half_life_days": ("a number > 0 (days)", "engagement_half_life_days = 14",
                                      _when(lambda v: _is_number(v) and v > 0, float)),
        "enterprise_domains": ("a list of domains, or the path of a CSV / text file with one "
                               "domain per line (relative to data.root)",
                               'enterprise_domains = "enterprise_domains.csv"',
                               _when(lambda v: _is_text(v) or (isinstance(v, list | tuple) and all(
                                   map(_is_text, v))), lambda v: v if isinstance(v, str) else tuple(v)))},
    FunnelsConfig: {k: ("a rule expression over feature names", f'{k} = "{v}"', _STR)
                    for k, v in (("usage", "events_30d >= 10"),
                                 ("several_users", "active_users_30d >= 2"),
                                 ("small_company", "employees < 200"),
                                 ("buyer_in_product", "buyer_title_present >= 1"))},
    PlaybookConfig: {
        "complexity": _choice("complexity", ("simple", "intermediate", "complex")),
        "motions": None,
        "self_serve_uplift": ("a number <= 1 (probability units, e.g. 0.01 for 1 point; -1 "
                              "turns the rule off)", "self_serve_uplift = 0.0",
                              _when(lambda v: _is_number(v) and v <= 1, float))},
    DiscoverConfig: {
        "counts": ("a list of distinct positive integers", "counts = [1, 3, 10]",
                   _when(lambda v: isinstance(v, list | tuple) and v and all(_is_int(n, 1) for n in v)
                         and len(set(v)) == len(v), lambda v: tuple(sorted(v)))),
        "quantiles": ("a list of numbers strictly between 0 and 1", "quantiles = [0.5, 0.9]",
                      _when(lambda v: isinstance(v, list | tuple) and v
                            and all(_is_number(q) and 0 < q < 1 for q in v),
                            lambda v: tuple(sorted(float(q) for q in v)))),
        "min_positives": ("a positive integer", "min_positives = 20", _POS_INT),
        "alpha": ("a number strictly between 0 and 1", "alpha = 0.05",
                  _when(lambda v: _is_number(v) and 0 < v < 1, float)),
        "adjacent_gap_days": ("a positive integer (days)", "adjacent_gap_days = 2", _POS_INT),
        "adjacent_ratio": ("a number > 1", "adjacent_ratio = 3",
                           _when(lambda v: _is_number(v) and v > 1, float)),
        "adjacent_events": _strings('adjacent_events = ["pricing_page_viewed"]')},
    ModelConfig: {
        "kind": _choice("kind", ("auto", "logistic", "gradient_boosting")),
        "calibration": _choice("calibration", ("isotonic", "platt", "none")),
        "test_periods": ("a positive integer (as_of dates tested)", "test_periods = 6", _POS_INT),
        "bootstrap": ("a positive integer (resamples)", "bootstrap = 200", _POS_INT),
        "registered_name": ("a non-empty string", 'registered_name = "pqlml"', _when(_is_text)),
        "max_training_rows": ("a positive integer (labelled snapshots fitted on whole)",
                              "max_training_rows = 500000", _POS_INT),
        "score_batch_rows": ("a positive integer (entities scored at a time)",
                             "score_batch_rows = 100000", _POS_INT)},
    ExportConfig: {
        "format": _choice("format", ("segment", "amplitude", "mixpanel", "segment_warehouse")),
        "source": ("a non-empty file path or glob (relative to data.root; ** allowed); for "
                   "segment_warehouse a folder, or the schema with data.connection set",
                   'source = "segment-logs/**/*.gz"', _when(_is_text)),
        "group_key": ("a non-empty string (the group type naming the account)",
                      'group_key = "company_id"', _when(_is_text)),
        "people": ("a file path or glob of Mixpanel user profiles, or \"\"", 'people = "people.json"', _STR),
        "groups": ("a file path or glob of Mixpanel group profiles, or \"\"", 'groups = "groups.json"', _STR),
        "signup_event": ("an event name, or \"\" for each user's first event",
                         'signup_event = "signed_up"', _STR),
        "max_reject_rate": ("a number from 0 to 1", "max_reject_rate = 0.01",
                            _when(lambda v: _is_number(v) and 0 <= v <= 1, float)),
        "properties": ('a list of numeric event properties in lower_snake_case (the vendor\'s '
                       'own keys), or a table of name = "<vendor key>"',
                       'properties = ["amount", "seats"]', _when(
                           lambda v: (isinstance(v, list | tuple) and all(
                               isinstance(x, str) and _NAME.fullmatch(x) for x in v))
                           or (isinstance(v, dict) and all(
                               isinstance(k, str) and _NAME.fullmatch(k) and _is_text(x)
                               for k, x in v.items())),
                           lambda v: _frozen_map(v if isinstance(v, dict) else {x: x for x in v})))},
    RetrainConfig: {
        "metric": _choice("metric", ("captured_at_capacity", "pr_auc", "roc_auc", "brier",
                                     "log_loss")),
        "margin": ("a number >= 0 (relative: 0.02 = 2% better)", "margin = 0.02",
                   _when(lambda v: _is_number(v) and v >= 0, float)),
        "periods": ("a positive integer (as_of dates compared)", "periods = 3", _POS_INT)},
    DriftConfig: {
        "threshold": ("a number > 0 (PSI)", "threshold = 0.25",
                      _when(lambda v: _is_number(v) and v > 0, float)),
        "warn": ("a number > 0 (PSI)", "warn = 0.1", _when(lambda v: _is_number(v) and v > 0, float)),
        "bins": ("an integer >= 2", "bins = 10", _when(lambda v: _is_int(v, 2)))},
    TrackingConfig: {"uri": ("an MLflow tracking URI (sqlite:///<path>, http(s)://<host>, "
                             "databricks...), or \"\" for mlflow.db beside the config",
                             'uri = "sqlite:///mlflow.db"',
                             _when(lambda v: isinstance(v, str) and (
                                 not v or re.match(r"^([a-z][a-z0-9+.-]*:|databricks$)", v) is not None)))},
    ExperimentConfig: {
        "alpha": ("a number strictly between 0 and 1", "alpha = 0.05",
                  _when(lambda v: _is_number(v) and 0 < v < 1, float)),
        "power": ("a number strictly between 0 and 1", "power = 0.8",
                  _when(lambda v: _is_number(v) and 0 < v < 1, float)),
        "segment_by": _choice("segment_by", ("segment", "industry", "country", ""))},
    CapacityConfig: {"per_period": ("a positive integer (sales touches per snapshot period)",
                                    "per_period = 200", _POS_INT)},
    UpliftConfig: {
        "touch_window_days": ("a positive integer (days)", "touch_window_days = 14", _POS_INT),
        "learner": _choice("learner", ("t", "x", "dr")),
        "capacity": ("an integer >= 0 (touches a period; 0: the data's median)",
                     "capacity = 400", _NAT_INT),
        "min_overlap": ("a number in [0, 0.5)", "min_overlap = 0.05",
                        _when(lambda v: _is_number(v) and 0 <= v < 0.5, float)),
        "in_scores": ("true or false", "in_scores = false", _when(lambda v: isinstance(v, bool)))},
}
_SECTIONS = tuple(f.name for f in dataclasses.fields(Config) if f.name != "path")
_SECTION_CLASSES = {"project": ProjectConfig, "outcomes": OutcomesConfig,
                    "schedule": ScheduleConfig, "labels": LabelsConfig, "fit": FitConfig,
                    "features": FeaturesConfig,
                    "tiers": TiersConfig, "capacity": CapacityConfig,
                    "funnels": FunnelsConfig, "playbook": PlaybookConfig,
                    "discover": DiscoverConfig, "model": ModelConfig,
                    "retrain": RetrainConfig, "drift": DriftConfig,
                    "tracking": TrackingConfig, "uplift": UpliftConfig,
                    "experiment": ExperimentConfig}


# --- sections --------------------------------------------------------------------

def _build(cls: type, raw: Any, where: str, src: str) -> Any:
    specs = _SPECS[cls]
    raw = _table(raw, where, src)
    _check_keys(raw, tuple(specs), where, src)
    return cls(**{k: (_convert(specs[k], v, f"{where}.{k}", src) if specs[k] is not None
                      else _NESTED[k](v, f"{where}.{k}", src)) for k, v in raw.items()})


_NAME = re.compile(r"[a-z][a-z0-9_]*")


_EXAMPLES = {"events": 'events = ["terms_page_viewed"]', "property": 'property = "amount"',
             "window_days": "window_days = 30"}


def _named_tables(raw: Any, where: str, src: str, allowed: tuple[str, ...],
                  required: tuple[str, str], example: str):
    """``[<where>.<name>]`` tables of a feature spec: (name, dotted key, table) each, the name
    in lower_snake_case, the keys among ``allowed`` and the ``required`` ones there."""
    raw = _table(raw, where, src)
    for name, spec in raw.items():
        key = f"{where}.{name}"
        if not _NAME.fullmatch(name):
            raise _bad(key, src, "named in lower_snake_case (a feature name)",
                       f"[{where}.{example}]", name)
        spec = _table(spec, key, src)
        _check_keys(spec, allowed, key, src)
        if any(k not in spec for k in required):
            first, second = required
            raise ConfigError(f"The [{key}] table in {src} needs both '{first}' and '{second}'. "
                              f"Fix: e.g. {_EXAMPLES[first]} and {_EXAMPLES[second]}.")
        yield name, key, spec


def _window_days(spec: Mapping, key: str, src: str) -> int:
    return _convert(("a positive integer (days)", "window_days = 30", _POS_INT),
                    spec["window_days"], f"{key}.window_days", src)


def _build_counts(raw: Any, where: str, src: str) -> Mapping[str, CountFeature]:
    """``[features.counts.<name>]`` tables: ``events`` (list) and ``window_days`` (int)."""
    out = {}
    for name, key, spec in _named_tables(raw, where, src, ("events", "window_days"),
                                         ("events", "window_days"), "legal_pages_30d"):
        events = _convert(_strings('events = ["terms_page_viewed"]'), spec["events"],
                          f"{key}.events", src)
        out[name] = CountFeature(events=events, window_days=_window_days(spec, key, src))
    return _frozen_map(out)


def _build_sums(raw: Any, where: str, src: str) -> Mapping[str, SumFeature]:
    """``[features.sums.<name>]`` tables: ``property``, ``window_days``, optional ``events``
    and ``how`` (``"sum"`` or ``"max"``)."""
    out = {}
    for name, key, spec in _named_tables(raw, where, src, ("property", "window_days", "events",
                                                          "how"), ("property", "window_days"),
                                         "amount_30d"):
        prop = _convert(("the name of a numeric event property", 'property = "amount"',
                         _when(lambda v: isinstance(v, str) and _NAME.fullmatch(v))),
                        spec["property"], f"{key}.property", src)
        events = _convert(_strings('events = ["order_completed"]'), spec.get("events", []),
                          f"{key}.events", src)
        how = _convert(_choice("how", ("sum", "max")), spec.get("how", "sum"), f"{key}.how", src)
        out[name] = SumFeature(property=prop, window_days=_window_days(spec, key, src),
                               events=events, how=how)
    return _frozen_map(out)


def _build_motions(raw: Any, where: str, src: str) -> Mapping[str, str]:
    """``[playbook.motions]``: ``"<tier>/<segment>/<complexity>" = "<motion>"``, ``*`` for any."""
    out = _str_map(raw, where, None, src)
    for key in out:
        if key.count("/") != 2:
            raise _bad(f"{where}.{key}", src, "a key of the form tier/segment/complexity",
                       '"tier_1/enterprise/*" = "enterprise outreach"', key)
    return out


def _build_values(raw: Any, where: str, src: str) -> Mapping[str, str]:
    """``[outcomes] values``: event name or outcome value -> conversion / hand_raise / ignore."""
    out = _str_map(raw, where, None, src, what="conversion, hand_raise or ignore",
                   example='"conversion"')
    for key, value in out.items():
        if value not in OUTCOME_MAPPING:
            raise _bad(f"{where}.{key}", src, "one of " + ", ".join(f'"{v}"' for v in OUTCOME_MAPPING),
                       f'values = {{ {key} = "conversion" }}', value)
    return out


_NESTED = {"counts": _build_counts, "sums": _build_sums, "motions": _build_motions,
           "values": _build_values}


def _build_data(raw: Any, base_dir: Path, src: str) -> DataConfig:
    raw = _table(raw, "data", src)
    _check_keys(raw, ("root", "connection", "memory_limit", "engine", "master", "spark", "export",
                      *TABLES), "data", src)
    specs = _SPECS[DataConfig]
    kw = {k: _convert(specs[k], raw[k], f"data.{k}", src) for k in specs
          if k in raw and specs[k] is not None}
    _check_engine(raw, kw, src)
    if "spark" in raw:
        kw["spark"] = _build_spark(raw["spark"], src)
    kw["root"] = (base_dir / Path(kw.get("root", ".")).expanduser()).resolve()
    kw.update({name: _build_table(name, raw[name], src) for name in TABLES if name in raw})
    frames = [n for n in TABLES if n in kw and kw[n].in_memory]
    if frames and kw.get("connection"):
        raise ConfigError(f"data.{frames[0]} in {src} is a DataFrame, read in pqlml's own "
                          f"DuckDB, but data.connection = {kw['connection']!r} reads every table "
                          f"from that database. Fix: remove data.connection (files and "
                          f"DataFrames mix freely without it), or load the frame into the "
                          f"database and name its table.")
    if frames and kw.get("engine") == "spark":
        raise ConfigError(f"data.{frames[0]} in {src} is a DataFrame, held in this Python "
                          f"process, but data.engine = \"spark\" reads every table on the "
                          f"cluster. Fix: write it to Parquet (df.to_parquet(\"{frames[0]}"
                          f".parquet\")) and name that file, or remove engine = \"spark\".")
    if "export" in raw:
        kw["export"] = _build_export(raw["export"], src)
        clash = [t for t in ("events", "users", "accounts", "memberships") if t in raw]
        if clash:
            raise ConfigError(f"[data.export] in {src} provides events, users, accounts and "
                              f"memberships (from group calls), so "
                              f"[data.{clash[0]}] cannot be set as well. Fix: remove "
                              f"[data.{clash[0]}] (outcomes, leads, signups, enrichment and "
                              "dispositions may stay), or remove "
                              "[data.export].")
    return DataConfig(**kw)


def _check_engine(raw: Mapping, kw: dict, src: str) -> None:
    """``master`` and ``[data.spark]`` belong to the Spark engine, which reads files or its
    own catalog (no ``connection``); DuckDB's ``memory_limit`` is refused by
    :func:`pqlml.sources.connect`, which names the engine."""
    spark = kw.get("engine") == "spark"
    for key in ("master", "spark"):
        if key in raw and not spark:
            raise ConfigError(f"[data] {key} in {src} sets up the Spark engine, but data.engine "
                              f"is {kw.get('engine', 'duckdb')!r}. Fix: add engine = \"spark\" "
                              f"to [data], or remove {key}.")
    if spark and kw.get("connection"):
        raise ConfigError(f"[data] engine = \"spark\" in {src} reads Parquet files and the "
                          f"Spark catalog's tables, but data.connection = "
                          f"{kw['connection']!r} names another database. Fix: remove "
                          f"data.connection (name catalog tables as source = \"db.table\"), "
                          f"or remove engine = \"spark\".")


def _build_spark(raw: Any, src: str) -> Mapping[str, str]:
    """``[data.spark]``: Spark settings (``"spark.executor.memory" = "4g"``), as text."""
    raw = _table(raw, "data.spark", src)
    out = {}
    for key, value in raw.items():
        if isinstance(value, Mapping) or not str(key).startswith("spark."):
            raise _bad(f"data.spark.{key}", src, "a Spark setting: a quoted key starting with "
                       "'spark.' and a string, number or boolean value",
                       '"spark.sql.shuffle.partitions" = 8', value)
        out[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    if out.get("spark.sql.session.timeZone", "UTC") != "UTC":
        raise _bad("data.spark.spark.sql.session.timeZone", src, '"UTC" (pqlml reads every time '
                   "in UTC; leave it out)", '"spark.sql.session.timeZone" = "UTC"',
                   out["spark.sql.session.timeZone"])
    return _frozen_map(out)


def _build_export(raw: Any, src: str) -> ExportConfig:
    raw = _table(raw, "data.export", src)
    specs = _SPECS[ExportConfig]
    _check_keys(raw, tuple(specs), "data.export", src)
    for key in ("format", "source"):
        if key not in raw:
            raise ConfigError(f"[data.export] in {src} needs '{key}'. Fix: e.g. format = "
                              '"segment" and source = "segment-logs/**/*.gz".')
    export = ExportConfig(**{k: _convert(specs[k], v, f"data.export.{k}", src)
                             for k, v in raw.items()})
    clash = [p for p in export.properties if p in TABLES["events"].columns]
    if clash:
        raise _bad("data.export.properties", src, "names that are not canonical events columns ("
                   + ", ".join(TABLES["events"].columns) + ")",
                   f'properties = {{ {clash[0]}_value = "{export.properties[clash[0]]}" }}',
                   list(export.properties))
    return export


def _build_table(name: str, raw: Any, src: str) -> TableSource:
    where = f"data.{name}"
    if isinstance(raw, str | os.PathLike) or is_frame(raw):   # events = df / "events.parquet"
        raw = {"source": raw}
    if not isinstance(raw, Mapping):
        raise _bad(where, src, f"a table (source, columns), a file path, or {FRAME_KINDS}",
                   f'[{where}] source = "{name}.parquet", or in Python {name}=df', raw)
    mapped = FIXED_VALUES.get(name) if name != "outcomes" else None   # outcomes: [outcomes] values
    _check_keys(raw, ("source", "columns", "values") if mapped else ("source", "columns"),
                where, src)
    source, frame = raw.get("source", _MISSING), None
    if is_frame(source):
        source, frame = frame_label(source), source
    elif isinstance(source, os.PathLike):
        source = os.fspath(source)
    spec = ("a non-empty string: a file path (Parquet/CSV, globs allowed), or a "
            f"table name when data.connection is set; or in memory, {FRAME_KINDS}",
            f'[{where}] source = "{name}.parquet"', _when(_is_text))
    source = _convert(spec, source, f"{where}.source", src)
    columns = raw.get("columns", {})
    if name == "events":   # other keys are numeric properties, named in lower_snake_case
        columns = _table(columns, f"{where}.columns", src)
        canonical = TABLES[name].columns
        # a usual name of a canonical column (timestamp for ts) is a misnamed key, no property
        properties = property_columns(columns)
        _check_keys({k: v for k, v in columns.items() if k not in properties}, canonical,
                    f"{where}.columns", src)
        for key in columns:
            if key not in canonical and not _NAME.fullmatch(str(key)):
                raise _bad(f"{where}.columns.{key}", src, "a canonical events column ("
                           + ", ".join(canonical) + ") or a numeric property named "
                           "in lower_snake_case", 'amount = "Order Total"', key)
        allowed = None
    else:
        allowed = TABLES[name].columns
    columns = _str_map(columns, f"{where}.columns", allowed, src,
                       what="the source's column name", example='"<source column>"')
    values = {}
    if mapped:
        values = _str_map(raw.get("values", {}), f"{where}.values", None, src,
                          what=f"one of {', '.join(map(repr, mapped[1]))}",
                          example=f'"{mapped[1][0]}"')
        for key, value in values.items():
            if value not in mapped[1]:
                raise _bad(f"{where}.values.{key}", src, f"one of {', '.join(map(repr, mapped[1]))}"
                           f" (the {name} table's {mapped[0]})",
                           f'[{where}] values = {{ "{key}" = "{mapped[1][0]}" }}', value)
    return TableSource(source=source, columns=columns, frame=frame, values=values)


def _str_map(raw: Any, where: str, allowed: tuple | None, src: str, *, what: str = "",
             example: str = "") -> Mapping[str, str]:
    """A table of non-empty strings: column renames (allowed keys) or rules (free keys)."""
    raw = _table(raw, where, src)
    if allowed is not None:
        _check_keys(raw, allowed, where, src)
    if not what:
        what, example = (("the source's column name", '"<source column>"') if allowed is not None
                         else ("a boolean expression over features", '"active_users_30d >= 7"'))
    for key, value in raw.items():
        spec = (f"a non-empty string ({what})", f"{key} = {example}", _when(_is_text))
        _convert(spec, value, f"{where}.{key}", src)
    return _frozen_map(raw)


def _check_consistency(cfg: Config, src: str) -> None:
    start, end = cfg.schedule.start, cfg.schedule.end
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"The 'schedule.start' setting ({start}) in {src} must be before "
                          f"'schedule.end' ({end}). Fix: e.g. start = 2024-02-01 and "
                          "end = 2025-06-01.")
    if cfg.drift.warn > cfg.drift.threshold:
        raise ConfigError(f"The 'drift.warn' setting ({cfg.drift.warn}) in {src} must be <= "
                          f"'drift.threshold' ({cfg.drift.threshold}). Fix: e.g. warn = 0.1 and "
                          "threshold = 0.25.")
    if cfg.outcomes.target == "accepted" and cfg.data.dispositions is None:
        raise ConfigError(f"The 'outcomes.target' setting in {src} is \"accepted\", which is "
                          "learned from sales' dispositions, but there is no [data.dispositions] "
                          'table. Fix: add\n[data.dispositions]\nsource = "dispositions.csv"\n'
                          'or set target = "conversion".')
    low, high = cfg.fit.employees_min, cfg.fit.employees_max
    if high is not None and low > high:
        raise ConfigError(f"The 'fit.employees_min' setting ({low}) in {src} must be <= "
                          f"'fit.employees_max' ({high}). Fix: e.g. employees_min = 50 and "
                          "employees_max = 5000, or remove employees_max for no maximum.")
    known = cfg.data.properties
    for name, spec in cfg.features.sums.items():
        if spec.property not in known:
            have = (f"The events' numeric properties: {', '.join(known)}." if known else
                    "The events have no numeric properties.")
            raise ConfigError(f"The 'features.sums.{name}.property' setting in {src} names "
                              f"{spec.property!r}, which is not a numeric event property. {have} "
                              f"Fix: map it, e.g. [data.events.columns] {spec.property} = "
                              f'"<source column>" (or [data.export] properties = '
                              f'["{spec.property}"]).')
    rule, rules = cfg.tiers.intent_rule, cfg.rules
    if rule and rule not in rules:
        close = difflib.get_close_matches(rule, list(rules), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        known = (f"Rules in [rules]: {', '.join(rules)}. Fix: use one of them, or add"
                 if rules else "[rules] is empty. Fix: add")
        raise ConfigError(f"The 'tiers.intent_rule' setting in {src} must name a rule in "
                          f"[rules] (or be \"\"). Got {rule!r} instead.{hint} {known} "
                          f'{rule} = "<expression>" under [rules], or set intent_rule = "".')
