"""pqlml: product-led sales analytics, from a product's event log to scored leads.

The names below are the toolkit in one import; each is loaded on first use, so
``import pqlml`` stays fast (no ibis, pandas or scikit-learn until a stage runs).
A project is opened once and its frames are handed to each stage:
``pqlml.train(project.snapshots(), settings=project.config)`` fits a model on every
labelled snapshot (``pqlml.train(frame, "conversion")`` on any labelled frame).

Examples
--------
>>> import pqlml
>>> sorted(pqlml.__all__)[:4]
['LeadClassifier', 'PqlmlError', 'Scorer', 'TierPolicy']
>>> pqlml.open_project.__module__
'pqlml.project'

``discover``, ``backtest`` and ``simulate`` are also the names of subpackages; the
subpackage itself is callable, ``pqlml.discover(frame, outcome, ...)`` runs
``pqlml.discover.discover(frame, outcome, ...)``, and ``pqlml.discover.scan`` stays reachable.
"""

from __future__ import annotations

import importlib
import sys
import types

# name -> (module, attribute); attribute None: the module itself (a callable subpackage).
_LAZY = {
    "open_project": ("pqlml.project", "open_project"),
    "build_features": ("pqlml.project", "build_features"),
    "build_labels": ("pqlml.project", "build_labels"),
    "Scorer": ("pqlml.score", "Scorer"),
    "train": ("pqlml.model", "train"),
    "LeadClassifier": ("pqlml.model", "LeadClassifier"),
    "TierPolicy": ("pqlml.tiers", "TierPolicy"),
    "discover": ("pqlml.discover", None),
    "backtest": ("pqlml.backtest", None),
    "simulate": ("pqlml.simulate", None),
    "PqlmlError": ("pqlml.errors", "PqlmlError"),
}

__all__ = ["__version__", *_LAZY]


class _CallableModule(types.ModuleType):
    """A subpackage that runs its namesake function when called (``pqlml.discover(...)``
    is ``pqlml.discover.discover(...)``): the package attribute and the subpackage are one
    object, so ``import pqlml.discover`` and ``from pqlml import discover`` agree,
    whichever happens first."""

    def __call__(self, *args, **kwargs):
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(types.ModuleType):
    """pqlml itself: the import system binds each loaded subpackage here with setattr,
    which is where the namesake subpackages become callable."""

    def __setattr__(self, name, value):
        if name in _LAZY and _LAZY[name][1] is None and isinstance(value, types.ModuleType):
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            value = version("pqlml")
        except PackageNotFoundError:   # a source tree that was never installed
            value = "0+unknown"
    elif name in _LAZY:
        module, attr = _LAZY[name]
        value = importlib.import_module(module)
        value = value if attr is None else getattr(value, attr)
    else:
        raise AttributeError(f"module 'pqlml' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
