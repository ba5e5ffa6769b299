"""The config's frozen dataclasses: the settings every stage reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping


def _frozen_map(m: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True)
class TableSource:
    """Where one canonical table comes from.

    ``source`` is a file path (Parquet or CSV; globs allowed), resolved against
    ``DataConfig.root``, or a table name when ``DataConfig.connection`` is set.
    ``columns`` maps canonical column names to the source's own names; columns
    not listed are expected under their canonical name. ``frame``: an in-memory table
    (a pandas DataFrame, a pyarrow Table or a polars DataFrame) read instead of a file;
    ``source`` is then its content hash, ``"DataFrame sha256:<hex>"``
    (:mod:`pqlml.config._frames`), which is what ``repr`` and ``==`` see of it. ``values``
    (dispositions and holdouts, whose column takes a fixed list of values:
    :data:`pqlml.schema.FIXED_VALUES`) maps the source's own words onto that list, compared
    case- and space-insensitively: ``{"Control": "holdout", "contacted": "touch"}``.
    """

    source: str
    columns: Mapping[str, str] = field(default_factory=_frozen_map)
    frame: object = field(default=None, repr=False, compare=False)
    values: Mapping[str, str] = field(default_factory=_frozen_map)

    @property
    def in_memory(self) -> bool:
        """Whether the table is a DataFrame held in memory (``frame``), not a file."""
        return self.frame is not None


@dataclass(frozen=True)
class ExportConfig:
    """A product-analytics export read by :mod:`pqlml.readers` (``[data.export]``)."""

    format: str
    source: str
    group_key: str = "company_id"
    people: str = ""
    groups: str = ""
    signup_event: str = "signed_up"
    max_reject_rate: float = 0.01
    properties: Mapping[str, str] = field(default_factory=_frozen_map)


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the tables are and the engine that reads them.

    ``engine``: ``"duckdb"`` (in-process, the default) or ``"spark"`` (a SparkSession on
    ``master``, ``"local[N]"`` or ``"spark://host:port"``, with the Spark settings in
    ``spark``; :func:`pqlml.sources.connect`).
    """

    root: Path = Path(".")
    connection: str = ""
    memory_limit: str = ""
    engine: str = "duckdb"
    master: str = ""
    spark: Mapping[str, str] = field(default_factory=_frozen_map)
    export: ExportConfig | None = None
    events: TableSource | None = None
    users: TableSource | None = None
    accounts: TableSource | None = None
    outcomes: TableSource | None = None
    leads: TableSource | None = None
    signups: TableSource | None = None
    enrichment: TableSource | None = None
    dispositions: TableSource | None = None
    memberships: TableSource | None = None
    touches: TableSource | None = None
    holdouts: TableSource | None = None

    @property
    def properties(self) -> tuple[str, ...]:
        """The events' numeric properties: ``[data.events.columns]`` keys that are not
        canonical columns, or the names in ``[data.export] properties``.

        Examples
        --------
        >>> DataConfig(events=TableSource("e.csv", {"ts": "time", "amount": "total"})).properties
        ('amount',)
        """
        if self.export is not None:
            return tuple(self.export.properties)
        if self.events is None:
            return ()
        from ..schema import property_columns
        return property_columns(self.events.columns)

    @property
    def in_memory(self) -> tuple[str, ...]:
        """The tables given as DataFrames (:attr:`TableSource.in_memory`)."""
        from ..schema import TABLES
        return tuple(n for n in TABLES if getattr(self, n) is not None
                     and getattr(self, n).in_memory)


OUTCOME_MAPPING = ("conversion", "hand_raise", "ignore")


@dataclass(frozen=True)
class OutcomesConfig:
    """Where labels come from and what models learn.

    ``hand_raise_events`` / ``conversion_events``: product events that are outcomes.
    ``values``: any event name or value of the outcomes table's ``outcome`` column ->
    ``"conversion"``, ``"hand_raise"`` or ``"ignore"`` (e.g. ``subscription_started =
    "conversion"``). ``target``: the label models learn by default: ``conversion``,
    ``hand_raise``, or ``accepted`` (sales accepted the lead; needs ``[data.dispositions]``).

    Examples
    --------
    >>> OutcomesConfig(hand_raise_events=("demo_requested",),
    ...                values={"contact_sales_submitted": "hand_raise"}).events_of("hand_raise")
    ('demo_requested', 'contact_sales_submitted')
    """

    hand_raise_events: tuple[str, ...] = ()
    conversion_events: tuple[str, ...] = ()
    target: str = "conversion"
    values: Mapping[str, str] = field(default_factory=_frozen_map)

    def events_of(self, kind: str) -> tuple[str, ...]:
        """The names (events or outcome values) that mean ``kind``, listed ones first."""
        listed = {"hand_raise": self.hand_raise_events,
                  "conversion": self.conversion_events}.get(kind, ())
        mapped = tuple(k for k, v in self.values.items() if v == kind and k not in listed)
        return tuple(listed) + mapped


@dataclass(frozen=True)
class ScheduleConfig:
    start: dt.date | None = None
    end: dt.date | None = None
    every: str = "month"


@dataclass(frozen=True)
class LabelsConfig:
    """``horizon_days``: the label window ``[as_of, as_of + horizon)``.
    ``exclude_prior_positives``: snapshots of entities that converted before ``as_of``
    (customers) are left out, as there is nothing left to predict; ``false`` treats
    conversion as repeatable (a repeat purchase, a renewal): every entity stays in.
    Hand-raises are always repeatable: an earlier one never removes a snapshot."""

    horizon_days: int = 28
    exclude_prior_positives: bool = True


@dataclass(frozen=True)
class FitConfig:
    industries: tuple[str, ...] = ()
    employees_min: int = 0
    employees_max: int | None = None
    countries: tuple[str, ...] = ()
    require_work_email: bool = True


BUYER_TITLES = ("vp", "vice president", "head of", "director", "chief", "cto", "ceo", "coo",
                "cfo", "cio", "cmo", "founder", "owner", "president")


@dataclass(frozen=True)
class CountFeature:
    """A user-defined count: events named ``events`` in ``[as_of - window_days, as_of)``."""

    events: tuple[str, ...]
    window_days: int


@dataclass(frozen=True)
class SumFeature:
    """A user-defined sum (or maximum) of a numeric event property: over the events named
    ``events`` (every event when empty) in ``[as_of - window_days, as_of)``."""

    property: str
    window_days: int
    events: tuple[str, ...] = ()
    how: str = "sum"


@dataclass(frozen=True)
class FeaturesConfig:
    """Feature catalog settings.

    ``events``: the event vocabulary for per-event volumes (empty: every event
    in the data, sorted). ``windows``: look-back windows in days for volumes, active
    users and property sums (30 is required: the catalog's named features use it).
    ``event_growth``: per event, the previous 30 days (``events_<event>_prev_30d``) and
    the growth ``events_<event>_velocity_30d``. ``active_users_events``: events whose
    distinct users of the last 30 days are counted (``active_users_<event>_30d``, accounts
    only; each costs a distinct count). ``buyer_titles``:
    case-insensitive title fragments that mark a buyer. ``counts``: extra
    named counts, e.g. ``legal_pages_30d = {events = ["terms_page_viewed",
    "privacy_page_viewed"], window_days = 30}``. ``sums``: named sums or maxima of a numeric
    event property, e.g. ``seats_added_30d = {property = "seats", events = ["seat_added"],
    window_days = 30}``. ``activation``: ordered checkpoints
    ``"<event> >= <n>"`` (:mod:`pqlml.features._activation`); ``activation_within_days``:
    the "activated soon after sign-up" horizon. ``engagement_weights`` (event -> weight)
    and ``engagement_half_life_days``: the decaying ``engagement_score``
    (:mod:`pqlml.features._engagement`). ``enterprise_domains``: known large companies'
    domains, a list or a CSV / text file (one per line), for the ``enterprise_domain`` flag.
    """

    events: tuple[str, ...] = ()
    windows: tuple[int, ...] = (7, 30, 90)
    event_growth: bool = True
    active_users_events: tuple[str, ...] = ()
    buyer_titles: tuple[str, ...] = BUYER_TITLES
    counts: Mapping[str, CountFeature] = field(default_factory=_frozen_map)
    sums: Mapping[str, SumFeature] = field(default_factory=_frozen_map)
    activation: tuple[str, ...] = ()
    activation_within_days: int = 14
    engagement_weights: Mapping[str, float] = field(default_factory=_frozen_map)
    engagement_half_life_days: float = 14.0
    enterprise_domains: tuple[str, ...] | str = ()


@dataclass(frozen=True)
class TiersConfig:
    intent_rule: str = ""
    method: str = "rules"
    precision_target: float = 0.2


@dataclass(frozen=True)
class FunnelsConfig:
    """Conditions (rule expressions over features) that route an entity to a funnel."""

    usage: str = "events_30d >= 10"
    several_users: str = "active_users_30d >= 2"
    small_company: str = "employees < 200"
    buyer_in_product: str = "buyer_title_present >= 1"


@dataclass(frozen=True)
class PlaybookConfig:
    """The product's complexity and overrides of the default motion table.

    ``motions`` keys are ``"<tier>/<segment>/<complexity>"`` with ``*`` for any,
    e.g. ``"tier_1/enterprise/*" = "enterprise outreach"``; the most specific
    matching key wins.

    ``self_serve_uplift`` (probability units, like the scores' ``uplift``): a Tier 1 or 2
    account whose uplift band's upper end (``uplift_high``) is at or below it gets the
    self-serve motion: likely to buy on its own, a touch adds little. Only where the scores
    carry an uplift; ``-1`` (or less, the default) turns it off: an uplift band is an
    estimate's, and the rule moves accounts away from sales on it, so a team turns it on
    once ``pqlml uplift`` shows its ranking holds on its own data.
    """

    complexity: str = "intermediate"
    motions: Mapping[str, str] = field(default_factory=_frozen_map)
    self_serve_uplift: float = -1.0


@dataclass(frozen=True)
class DiscoverConfig:
    """Signal discovery settings.

    ``counts``: the "at least n times" grid for per-event volumes; ``quantiles``:
    thresholds for other numeric features; ``min_positives``: fewer outcomes than
    this is an error; ``alpha``: the q-value (Benjamini-Hochberg) cut;
    ``adjacent_gap_days`` / ``adjacent_ratio``: an event whose occurrences pile up
    in the days just before outcomes (``ratio`` times more than a month earlier)
    is outcome-adjacent; ``adjacent_events``: events declared adjacent.
    """

    counts: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 50, 100)
    quantiles: tuple[float, ...] = (0.5, 0.75, 0.9, 0.95)
    min_positives: int = 20
    alpha: float = 0.05
    adjacent_gap_days: int = 2
    adjacent_ratio: float = 3.0
    adjacent_events: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    """``kind``: auto (chosen forward in time on the training rows among the logistic at
    three strengths and the additive boosting, :mod:`pqlml.model._select`), logistic or
    gradient_boosting; ``calibration``: platt (default: monotone, so
    it keeps the ranking and never says 0 or 1), isotonic or none
    (fitted on the latest quarter of the training snapshots); ``test_periods``: how many
    of the last as_of dates the backtest tests on, each after training on the snapshots
    whose labels were complete by then; ``bootstrap``: resamples for the CIs;
    ``registered_name``: the MLflow registry name ``train`` registers under;
    ``max_training_rows``: above this many labelled snapshots, ``train`` and ``backtest`` fit
    on a sample (every positive, each cutoff's negatives at one rate, weighted by 1 / rate:
    :mod:`pqlml.model._sample`); the default keeps a float32 design of ~200 features near
    0.4 GB and the logistic fit's float64 copies (imputed, log1p'd, scaled: ~5 of the
    design) near 4 GB; ``score_batch_rows``: entities ``score``
    predicts and explains at a time (tiers from every probability at once)."""

    kind: str = "auto"
    calibration: str = "platt"
    test_periods: int = 6
    bootstrap: int = 200
    registered_name: str = "pqlml"
    max_training_rows: int = 500_000
    score_batch_rows: int = 100_000


@dataclass(frozen=True)
class RetrainConfig:
    """How ``pqlml retrain`` decides. ``metric``: captured_at_capacity (converters among
    each period's top ``capacity.per_period``, the default), pr_auc, roc_auc, brier or
    log_loss; ``margin``: how much better the challenger must be, relative (0.02 = 2%
    better; for brier and log_loss, 2% lower); ``periods``: the latest as_of dates both
    models are scored on (only those after the champion's training window count)."""

    metric: str = "captured_at_capacity"
    margin: float = 0.02
    periods: int = 3


@dataclass(frozen=True)
class DriftConfig:
    """``pqlml drift``: population stability index (PSI) per feature and for the score;
    ``threshold`` flags drift (0.25: the usual "significant shift"), ``warn`` marks a
    moderate one (0.1); ``bins``: reference quantile bins."""

    threshold: float = 0.25
    warn: float = 0.1
    bins: int = 10


@dataclass(frozen=True)
class TrackingConfig:
    """``[tracking]``: where MLflow runs and the registry live. ``uri``: an MLflow tracking
    URI (``sqlite:///stores/mlflow.db``: a relative path is resolved against the config
    file's folder; ``http://host:5000``; ``databricks``). Empty (the default): the
    environment's ``MLFLOW_TRACKING_URI`` if set, else ``mlflow.db`` beside the config
    file, with artifacts in ``mlartifacts/`` beside it (:func:`pqlml.track.tracking_uri`)."""

    uri: str = ""


@dataclass(frozen=True)
class ExperimentConfig:
    """``[experiment]``: randomised holdouts (``pqlml experiment plan`` / ``analyze``).
    ``alpha``: two-sided significance level and 1 - the CIs' confidence; ``power``: what a
    plan must reach; ``segment_by``: the account attribute (``segment``, ``industry``,
    ``country``) the analysis reports effects by ("" for the pooled effect only)."""

    alpha: float = 0.05
    power: float = 0.8
    segment_by: str = "segment"


@dataclass(frozen=True)
class CapacityConfig:
    per_period: int = 100


@dataclass(frozen=True)
class UpliftConfig:
    """``[uplift]`` (``pqlml uplift``): a snapshot at ``as_of`` is *touched* when its account
    has a touch in ``[as_of, as_of + touch_window_days)``; ``learner``: the meta-learner of a
    touch's effect (``t``, ``x`` or ``dr``: :mod:`pqlml.uplift`; ``x`` by default, the one that
    suits rare touches); ``capacity``: touches a
    period the policies are compared at (0, the default: the median number of touched
    accounts per as_of in the data); ``min_overlap``: propensities of a touch outside
    ``[min_overlap, 1 - min_overlap]`` are not comparable; ``in_scores``: ``pqlml train``
    also learns the effect on every labelled snapshot and the scores carry it (``uplift``,
    ``uplift_low``, ``uplift_high``; :mod:`pqlml.uplift._scoring`); off by default (it about
    triples ``pqlml train``'s time, and is worth it with a randomised holdout)."""

    touch_window_days: int = 14
    learner: str = "x"
    capacity: int = 0
    min_overlap: float = 0.05
    in_scores: bool = False


@dataclass(frozen=True)
class ProjectConfig:
    name: str = "pqlml"
    entity: str = "account"


@dataclass(frozen=True)
class Config:
    project: ProjectConfig = field(default_factory=ProjectConfig)
    data: DataConfig = field(default_factory=DataConfig)
    outcomes: OutcomesConfig = field(default_factory=OutcomesConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    rules: Mapping[str, str] = field(default_factory=_frozen_map)
    tiers: TiersConfig = field(default_factory=TiersConfig)
    funnels: FunnelsConfig = field(default_factory=FunnelsConfig)
    playbook: PlaybookConfig = field(default_factory=PlaybookConfig)
    discover: DiscoverConfig = field(default_factory=DiscoverConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    uplift: UpliftConfig = field(default_factory=UpliftConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    path: Path | None = None

    def resolve(self, source: str) -> Path:
        """Return the file ``source`` resolved against ``data.root``.

        Parameters
        ----------
        source : str
            A file path or glob; an absolute one is returned unchanged.

        Returns
        -------
        Path
        """
        p = Path(source).expanduser()
        return p if p.is_absolute() else self.data.root / p
