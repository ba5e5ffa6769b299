"""Benchmark: pqlml's feature build against the plain-scan floor, hand-written pandas and
polars, and featuretools DFS, for 1 cutoff (2025-06-01) and 12 monthly cutoffs
(2024-07-01 ... 2025-06-01).

    .venv/bin/python benchmarks/bench_features.py [--accounts 100000] [--repeats 3] [--data DIR]

Creates the simulated company in DIR (default data/generated/sim{N}, git-ignored) with
``pqlml simulate --accounts N --seed 1`` if it is missing. Then each tool runs REPEATS
times, each run in a fresh process (``_run_one.py``; featuretools via ``uv`` in its own
environment, ``_featuretools_dfs.py``), so its peak RSS is that run's own. The tools take
turns (A, B, C, A, B, C, ...; featuretools after them), so that a drift of the machine
falls on every tool alike. Measured:

* plain scan: the four event columns (ts, user_id, account_id, event) read fully into
  Arrow, by pyarrow and by DuckDB; the faster median is the floor ("x plain scan");
* pqlml: ``build_features(config, as_of=dates)``, the whole default catalog, from the
  config: load and validate the tables, resolve identities, spine, features (the simulated
  config without its profile, enrichment, activation and engagement sections);
* pqlml_1gb: the same under ``[data] memory_limit = "1GB"`` (DuckDB spills beyond it);
* pqlml_profiles: the same with those families on (the simulated config as written);
* hand-written pandas / polars (``_handwritten_*.py``): the same features from the same
  Parquet files, read included;
* featuretools 1.31 DFS: the subset it has primitives for (COUNT, with ``where`` per
  event, NUM_UNIQUE and TIME_SINCE_* over 7/30/90-day, previous-30-day and all-history
  training windows), named as pqlml names them; only the ``dfs`` calls are timed.
  If the full log takes longer than ``--ft-timeout`` it runs on a sample of accounts
  holding about ``--ft-sample-events`` events, and the table says so (nothing is scaled).

Times exclude interpreter start-up and imports. The first run of each tool writes its
result, and every tool's values are checked against pqlml's on all common columns
(PASS/FAIL per tool, see ``_equality.py``; pandas and polars must also have every
column). ``--tools`` picks the tools, e.g. ``--tools pqlml,pandas,polars`` to skip
featuretools. Output: the machine, a markdown table of medians with the verdicts, and
each check in full.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _equality  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
MONTHS = [(2024, m) for m in range(7, 13)] + [(2025, m) for m in range(1, 7)]
CUTOFFS = {1: ["2025-06-01"], 12: [f"{y}-{m:02d}-01" for y, m in MONTHS]}
TOOLS = ("scan_arrow", "scan_duckdb", "pqlml", "pqlml_1gb", "pqlml_profiles", "pandas", "polars",
         "featuretools")
LABELS = {"scan_arrow": "plain scan (pyarrow)", "scan_duckdb": "plain scan (DuckDB)",
          "pqlml": "pqlml", "pqlml_1gb": 'pqlml, memory_limit = "1GB"', "pqlml_profiles": "pqlml + profiles, enrichment, activation, engagement",
          "pandas": "hand-written pandas", "polars": "hand-written polars",
          "featuretools": "featuretools DFS"}
FT_PACKAGES = ("featuretools==1.31.0", "pandas<3", "numpy<2.1", "pyarrow", "setuptools<81")
console = Console(stderr=True)


def uv_python(uv: Path) -> list[str]:
    """The side environment's python: featuretools with pandas 2."""
    cmd = [str(uv), "run", "--no-project", "--python", "3.11"]
    for package in FT_PACKAGES:
        cmd += ["--with", package]
    return cmd + ["python", "-W", "ignore"]


def command(tool: str, data: Path, dates: list[str], out: Path | None, args) -> list[str]:
    """The command line of one run: featuretools in its side environment, the rest here."""
    dates_json = json.dumps(dates)
    if tool == "featuretools":
        cmd = uv_python(args.uv) + [str(HERE / "_featuretools_dfs.py"), str(data), dates_json,
                                    str(out or os.devnull)]
        return cmd + (["--sample-events", str(args.ft_sample)] if args.ft_sample else [])
    cmd = [sys.executable, str(HERE / "_run_one.py"), tool, str(data), dates_json]
    return cmd + ([str(out)] if out else [])


def run_child(cmd: list[str], timeout: float | None = None) -> dict | None:
    """Run one measurement; its ``@@RESULT`` line, or None if it ran past ``timeout``."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=ROOT, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)        # the child's own process group only
        p.communicate()
        return None
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{err[-3000:]}")
    line = next(x for x in reversed(out.splitlines()) if x.startswith("@@RESULT "))
    return json.loads(line.removeprefix("@@RESULT "))


def ensure_data(data: Path, accounts: int) -> None:
    """Simulate the company once; later runs reuse it (simulating 100k takes a while)."""
    if not (data / "pqlml.toml").exists():
        console.print(f"simulating {accounts:,} accounts into {data} ...")
        subprocess.run([sys.executable, "-m", "pqlml.cli", "simulate", "--accounts",
                        str(accounts), "--seed", "1", "--out", str(data)], check=True, cwd=ROOT)


def machine(data: Path) -> str:
    """The machine and data line: times mean nothing without them (and the load, as the
    machine may be shared)."""
    import duckdb
    import pandas
    import polars
    import pyarrow
    import pyarrow.parquet as pq
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    events = pq.ParquetFile(data / "events.parquet").metadata.num_rows
    accounts = pq.ParquetFile(data / "accounts.parquet").metadata.num_rows
    return (f"machine: {os.cpu_count()} cores, {ram:.0f} GB RAM, {platform.system()} "
            f"{platform.machine()}, Python {platform.python_version()}; duckdb "
            f"{duckdb.__version__}, pandas {pandas.__version__}, polars {polars.__version__}, "
            f"pyarrow {pyarrow.__version__}; load average {os.getloadavg()[0]:.1f} at start\n"
            f"data: {data} ({accounts:,} accounts, {events:,} events)")


def ft_setup(args) -> str:
    """Create (or reuse) the featuretools environment; not part of any timing."""
    t = time.perf_counter()
    code = "import featuretools, pandas; print(featuretools.__version__, pandas.__version__)"
    out = subprocess.run(uv_python(args.uv) + ["-c", code], check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout.split()
    return (f"featuretools {out[0]} (pandas {out[1]}) environment ready in "
            f"{time.perf_counter() - t:.1f} s (uv; not timed)")


def interleaved(tools: list[str], n: int, dates: list[str], tmp: Path, args, progress,
                task) -> dict:
    """REPEATS fresh-process runs of each tool, taken in turn (tool A, B, C, then A, B, C
    again...): this shared 2-core VM drifts by ~10% over minutes, and runs in turn let the
    drift fall on every tool alike, so the ratios hold even when the seconds move. The
    first run of each tool writes its result to ``tmp`` for the value checks."""
    runs: dict[str, list] = {tool: [] for tool in tools}
    for r in range(args.repeats):
        for tool in tools:
            progress.update(task, description=f"{LABELS[tool]}, {n} cutoff(s), run {r + 1}")
            out = tmp / f"{tool}_{n}.parquet" if r == 0 else None
            runs[tool].append(run_child(command(tool, args.data, dates, out, args), None))
            progress.advance(task)
    return {(tool, n): {"runs": runs[tool], "sample": None, "note": None} for tool in tools}


def measure(tool: str, dates: list[str], data: Path, out: Path, args, advance) -> dict:
    """REPEATS fresh-process runs of one tool; the first writes its result to ``out``.

    featuretools runs on the full log unless a run takes over ``--ft-timeout``; then
    all its runs (from here on) use a sample of accounts.
    """
    while True:
        runs = []
        for r in range(args.repeats):
            full_ft = tool == "featuretools" and not args.ft_sample
            res = run_child(command(tool, data, dates, out if r == 0 else None, args),
                            args.ft_timeout if full_ft else None)
            if res is None:
                break
            runs.append(res)
            advance()
        else:
            return {"runs": runs, "sample": runs[0].get("sample"), "note": args.ft_note}
        args.ft_note = f"the full log took over {args.ft_timeout:.0f} s ({len(dates)} cutoffs)"
        args.ft_sample = args.ft_sample_events


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _label(tool: str, res: dict) -> str:
    sample = res["sample"]
    if not sample:
        return LABELS[tool]
    return f"{LABELS[tool]} (sample: {sample['accounts']:,} accounts, {sample['events']:,} events)"


def table(results: dict, verdicts: dict) -> str:
    """The markdown table: medians per tool and number of cutoffs, and the value checks."""
    lines = ["| tool | cutoffs | features | median s | min s | max s | peak RSS MB "
             "| x plain scan | tool s / pqlml s | values vs pqlml |", "|---" * 10 + "|"]
    for n in CUTOFFS:
        scans = [_median(results[t, n]["runs"], "seconds") for t in TOOLS
                 if t.startswith("scan") and (t, n) in results]
        floor = min(scans) if scans else None
        ours = results.get(("pqlml", n))
        for tool in TOOLS:
            if (tool, n) not in results:
                continue
            res = results[tool, n]
            secs = [r["seconds"] for r in res["runs"]]
            med = statistics.median(secs)
            comparable = not res["sample"]
            x_scan = f"{med / floor:.1f}" if floor and comparable else "—"
            vs_pqlml = (f"{med / _median(ours['runs'], 'seconds'):.2f}"
                        if ours and comparable and not tool.startswith("scan") else "—")
            check = verdicts.get((tool, n))
            verdict = "reference" if tool == "pqlml" else check.verdict() if check else "—"
            lines.append(f"| {_label(tool, res)} | {n} | {res['runs'][0]['features'] or '—'} "
                         f"| {med:.2f} | {min(secs):.2f} | {max(secs):.2f} "
                         f"| {_median(res['runs'], 'rss_mb'):,.0f} | {x_scan} | {vs_pqlml} "
                         f"| {verdict} |")
    return "\n".join(lines)


def checks(n: int, tmp: Path, results: dict) -> dict:
    """Each tool's values against pqlml's for one set of cutoffs: {(tool, n): Check}."""
    if ("pqlml", n) not in results:
        return {}
    ref = _equality.load(tmp / f"pqlml_{n}.parquet")
    out = {}
    for tool in ("pqlml_1gb", "pandas", "polars", "featuretools"):
        if (tool, n) in results:
            other = _equality.load(tmp / f"{tool}_{n}.parquet")
            out[tool, n] = _equality.compare(LABELS[tool], ref, other,
                                             complete=tool != "featuretools",
                                             sample=bool(results[tool, n]["sample"]))
    return out


def notes(results: dict) -> list[str]:
    out = []
    for n in CUTOFFS:
        res = results.get(("featuretools", n))
        if res:
            setup = _median(res["runs"], "setup_seconds")
            out.append(f"featuretools, {n} cutoff(s): {res['runs'][0]['features']} features; "
                       f"reading the data and building the EntitySet took {setup:.1f} s "
                       f"(median, not in the table)"
                       + (f"; sampled because {res['note']}" if res["note"] else ""))
    return out


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", type=Path, help="default: data/generated/sim{ACCOUNTS}")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated; default all: "
                   f"{','.join(TOOLS)}")
    p.add_argument("--uv", type=Path, default=ROOT / ".tools" / "bin" / "uv")
    p.add_argument("--ft-timeout", type=float, default=600.0,
                   help="seconds a featuretools run on the full log may take (default 600)")
    p.add_argument("--ft-sample-events", type=int, default=2_000_000,
                   help="events in featuretools' sample when the full log is too slow")
    p.add_argument("--ft-sample", type=int, help="always run featuretools on this many events")
    args = p.parse_args()
    args.tools = [t for t in TOOLS if t in args.tools.split(",")]
    args.data = (args.data or ROOT / "data" / "generated" / f"sim{args.accounts}").resolve()
    args.ft_note = None
    return args


def main() -> None:
    args = parse_args()
    ensure_data(args.data, args.accounts)
    print(machine(args.data), flush=True)
    if "featuretools" in args.tools:
        print(ft_setup(args), flush=True)
    results, verdicts = {}, {}
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total} runs"), TimeElapsedColumn())
    with tempfile.TemporaryDirectory() as tmp, Progress(*columns, console=console) as progress:
        task = progress.add_task("", total=len(CUTOFFS) * len(args.tools) * args.repeats)
        for n, dates in CUTOFFS.items():
            results |= interleaved([t for t in args.tools if t != "featuretools"], n, dates,
                                   Path(tmp), args, progress, task)
            if "featuretools" in args.tools:
                progress.update(task, description=f"{LABELS['featuretools']}, {n} cutoff(s)")
                results["featuretools", n] = measure(
                    "featuretools", dates, args.data, Path(tmp) / f"featuretools_{n}.parquet",
                    args, lambda: progress.advance(task))
            progress.update(task, description=f"checking values, {n} cutoff(s)")
            verdicts |= checks(n, Path(tmp), results)
    print(f"\nMedians of {args.repeats} fresh-process run(s); x plain scan = median / the "
          f"faster scan's median; tool s / pqlml s > 1: pqlml is faster.\n")
    print(table(results, verdicts))
    print("\n" + "\n".join(notes(results) + [f"{n} cutoff(s): {c.summary()}"
                                              for (_, n), c in verdicts.items()]))
    if not all(c.passed for c in verdicts.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
