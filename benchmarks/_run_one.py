"""One timed run of one tool in a fresh process, for bench_features.py.

    .venv/bin/python benchmarks/_run_one.py TOOL DATA '["2025-06-01", ...]' [OUT.parquet]

TOOL is scan_arrow, scan_duckdb, pqlml (the default catalog), pqlml_1gb (the same
under ``[data] memory_limit = "1GB"``), pqlml_profiles (the simulated config with every
family), pandas or polars. Imports (ibis's DuckDB backend among them) happen before
the clock starts; the clock stops when the result is in memory (an Arrow table for
the scans, a DataFrame for the others). The result is then written to OUT, if
given, for the equality checks. Prints one line ``@@RESULT {json}``: seconds,
rss_mb (this process's peak RSS), rows, features.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _catalog import EVENT_COLUMNS  # noqa: E402


def _scan_arrow():
    import pyarrow.parquet as pq
    return lambda data, dates: pq.read_table(data / "events.parquet", columns=EVENT_COLUMNS)


def _scan_duckdb():
    import duckdb

    def run(data, dates):
        cols = ", ".join(EVENT_COLUMNS)
        return duckdb.connect().execute(
            f"select {cols} from read_parquet('{data / 'events.parquet'}')").to_arrow_table()
    return run


def _build_features():
    """pqlml's ``build_features``, with ibis's DuckDB backend imported too: ibis imports a
    backend's module at its first connection (0.2 s), which would otherwise put an import
    on pqlml's clock and not on the others'."""
    import ibis

    from pqlml.project import build_features
    ibis.duckdb  # noqa: B018 - the attribute access imports the backend
    return build_features


def _pqlml():
    """The default catalog the hand-written versions reproduce: the simulated config without
    its profile, enrichment, activation, engagement and feedback sections."""
    build_features = _build_features()
    return lambda data, dates: build_features(catalog_config(data), as_of=dates)


def _pqlml_1gb():
    """The default catalog with DuckDB's memory capped at 1 GB (it spills beyond)."""
    build_features = _build_features()

    def run(data, dates):
        return build_features(catalog_config(data, memory_limit="1GB"), as_of=dates)
    return run


def _pqlml_profiles():
    """The simulated config as written: the catalog plus sign-up answers, enrichment, the
    enterprise list, activation checkpoints and the engagement score."""
    build_features = _build_features()
    return lambda data, dates: build_features(data / "pqlml.toml", as_of=dates)


def catalog_config(data: Path, memory_limit: str = "") -> Path:
    """``pqlml.catalog.toml`` beside the simulated config, written once (not timed): without
    the new sections, and reading ``users.catalog.parquet``, the users without their sign-up
    answers (pqlml uses answer columns wherever a users table has them). With
    ``memory_limit``: ``pqlml.catalog_<limit>.toml``, the same with ``[data] memory_limit``."""
    import pyarrow.parquet as pq

    from pqlml.schema import SIGNUP_ANSWERS

    name = f"pqlml.catalog_{memory_limit}.toml" if memory_limit else "pqlml.catalog.toml"
    out, users = data / name, data / "users.catalog.parquet"
    if not users.exists():
        table = pq.read_table(data / "users.parquet")
        pq.write_table(table.drop_columns([c for c in SIGNUP_ANSWERS if c in table.column_names]),
                       users)
    keep, skip = [], False
    for line in (data / "pqlml.toml").read_text().splitlines():
        if line.startswith("["):
            skip = line.startswith(("[features", "[data.enrichment", "[data.dispositions"))
        if not skip:
            keep.append(line)
    text = "\n".join(keep).replace('source = "users.parquet"', 'source = "users.catalog.parquet"') + "\n"
    if memory_limit:
        text = text.replace('root = "."', f'root = "."\nmemory_limit = "{memory_limit}"', 1)
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return out


def _pandas():
    from _handwritten_pandas import features
    return features


def _polars():
    from _handwritten_polars import features
    return features


TOOLS = {"scan_arrow": _scan_arrow, "scan_duckdb": _scan_duckdb, "pqlml": _pqlml,
         "pqlml_1gb": _pqlml_1gb, "pqlml_profiles": _pqlml_profiles, "pandas": _pandas, "polars": _polars}


def _write(result, out: str) -> None:
    if hasattr(result, "write_parquet"):          # polars
        result.write_parquet(out)
    elif hasattr(result, "to_parquet"):           # pandas
        result.to_parquet(out)


def main() -> None:
    tool, data, dates = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    run = TOOLS[tool]()
    t = time.perf_counter()
    result = run(data, dates)
    seconds = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = result.num_rows if hasattr(result, "num_rows") else len(result)
    features = None if tool.startswith("scan") else result.shape[1] - 2
    if len(sys.argv) > 4:
        _write(result, sys.argv[4])
    print("@@RESULT " + json.dumps({"seconds": seconds, "rss_mb": rss_mb, "rows": rows,
                                    "features": features}), flush=True)


if __name__ == "__main__":
    main()
