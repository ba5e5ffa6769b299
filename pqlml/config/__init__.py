"""The project config: one TOML file, loaded into frozen dataclasses.

:func:`load_config` reads a ``pqlml.toml``; :func:`config_from_dict` builds the
same config from a dict; :func:`config_from_settings` from Python settings whose tables
may be DataFrames (what :func:`pqlml.open_project` takes). Every mistake raises :class:`~pqlml.errors.ConfigError`
naming the file, the dotted key, what is expected, what was given and the fix.
"""

from ._load import config_from_dict, load_config
from ._settings import config_from_settings
from ._model import (BUYER_TITLES, CapacityConfig, Config, CountFeature, DataConfig, DiscoverConfig,
                     FeaturesConfig, FitConfig, FunnelsConfig, LabelsConfig, ModelConfig,
                     OutcomesConfig, RetrainConfig, DriftConfig, TrackingConfig, ExportConfig, SumFeature,
                     ExperimentConfig,
                     PlaybookConfig, ProjectConfig, ScheduleConfig, TableSource, TiersConfig)
from ._model import UpliftConfig

__all__ = [
    "TableSource", "ExportConfig", "DataConfig", "OutcomesConfig", "ScheduleConfig", "LabelsConfig",
    "FitConfig", "FeaturesConfig", "CountFeature", "SumFeature", "BUYER_TITLES", "TiersConfig",
    "CapacityConfig", "DiscoverConfig", "ModelConfig", "RetrainConfig", "DriftConfig", "TrackingConfig", "FunnelsConfig", "PlaybookConfig", "ProjectConfig", "Config", "load_config", "config_from_dict",
    "config_from_settings", "ExperimentConfig",
    "UpliftConfig",
]
