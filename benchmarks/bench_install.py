"""Bootstrap time and size of the environments `make demo` and `make test` install, per revision.

    .venv/bin/python benchmarks/bench_install.py --revs a3c78bb HEAD --repeats 3 [--cold]

Each revision is exported (git archive) to a temporary folder with this checkout's `.tools`
copied in, so installing uv itself is not timed. Each run removes `.venv`, times the make
target that installs a set (wall seconds and the children's CPU seconds), then records the
size of `.venv` (`du -sm`) and the package and bytecode-file counts uv reports. Revisions
with one set (before issue 24) run `make setup`; later ones `.venv/.synced-demo` (what
`make demo` installs) and `.venv/.synced-test` (what `make test` installs). `--cold` gives
every run an empty uv cache, so it downloads every wheel.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _export(rev: str, into: Path) -> Path:
    tree = into / rev.replace("/", "_")
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    shutil.copytree(ROOT / ".tools", tree / ".tools", symlinks=True)
    return tree


def _run(tree: Path, target: str, cache: Path | None) -> dict:
    shutil.rmtree(tree / ".venv", ignore_errors=True)
    env = dict(os.environ, **({"UV_CACHE_DIR": str(cache)} if cache else {}))
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(["make", "-C", str(tree), target], env=env, check=True,
                         capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = out.stdout + out.stderr
    size = subprocess.run(["du", "-sm", str(tree / ".venv")], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    count = re.search(r"Installed (\d+) packages", log)
    compiled = re.search(r"Bytecode compiled (\d+) files", log)
    return {"wall": wall, "cpu": cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
            "mb": int(size), "packages": int(count.group(1)) if count else None,
            "pyc": int(compiled.group(1)) if compiled else None,
            "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revs", nargs="+", default=["HEAD"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="an empty uv cache for every run")
    args = parser.parse_args()
    print("| revision | target | runs | median wall s | median CPU s | .venv MB | packages "
          "| bytecode files | load average |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {rev: _export(rev, Path(tmp)) for rev in args.revs}
        for rev, tree in trees.items():
            two = ".synced-demo" in (tree / "Makefile").read_text()
            for target in ([".venv/.synced-demo", ".venv/.synced-test"] if two else ["setup"]):
                runs = []
                for i in range(args.repeats):
                    cache = Path(tmp) / f"cache-{rev}-{target[-4:]}-{i}" if args.cold else None
                    runs.append(_run(tree, target, cache))
                    if cache:
                        shutil.rmtree(cache, ignore_errors=True)
                loads = [r["load"] for r in runs]
                print(f"| {rev} | {target} | {len(runs)} "
                      f"| {statistics.median(r['wall'] for r in runs):.1f} "
                      f"| {statistics.median(r['cpu'] for r in runs):.1f} | {runs[-1]['mb']:,} "
                      f"| {runs[-1]['packages']} | {runs[-1]['pyc']:,} "
                      f"| {min(loads):.1f}-{max(loads):.1f} |", flush=True)


if __name__ == "__main__":
    main()
