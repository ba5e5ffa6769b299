"""Benchmark: reading 1 GB of Segment JSON lines into canonical tables.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_readers.py [--gb 1.0] [--repeats 3]

Writes DIR/segment.jsonl (default data/generated/segment_1gb, git-ignored; created if
missing): Segment Spec messages shaped like analytics.js sends them (context with library,
IP, user agent and page; ~480 bytes a line), 94% track calls over 20,000 users and
2,000 accounts, plus identify and group calls; 0.1% of lines are broken on purpose
(truncated JSON), so the reject path is measured too. Each tool runs REPEATS times in a
fresh process (peak RSS is its own):

* pqlml: ``load_tables`` with ``[data.export] format = "segment"``: every line numbered,
  parsed, rejects counted and written, identities stitched, canonical events / users /
  accounts validated and materialised;
* DuckDB ``read_ndjson`` of the same file into Arrow with ``ignore_errors`` (the fastest
  typed read; broken lines come out as nulls, silently, and there is no identity work);
* polars ``read_ndjson`` (fails on the broken lines, so it reads a copy without them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("pqlml", "duckdb", "polars")
_LINE = ('{{"type":"track","messageId":"ajs-{i:012d}","channel":"browser","anonymousId":"anon-{u}",'
         '"userId":"u{u}","context":{{"library":{{"name":"analytics.js","version":"2.11.1"}},'
         '"ip":"203.0.113.{ip}","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) '
         'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","page":{{"path":"/app",'
         '"url":"https://app.example.com/app"}}}},"integrations":{{}},"originalTimestamp":"{ts}",'
         '"sentAt":"{ts}","receivedAt":"{ts}","timestamp":"{ts}","version":2,"event":"{event}",'
         '"properties":{{"board_id":"b{b}","plan":"free"}}}}')
_EVENTS = ("task_created", "message_sent", "comment_added", "file_uploaded", "invite_sent",
           "pricing_page_viewed", "report_exported", "integration_connected")


def _generate(path: Path, gb: float) -> dict:
    import datetime as dt

    path.parent.mkdir(parents=True, exist_ok=True)
    start, size, i, broken = dt.datetime(2024, 1, 1), 0, 0, 0
    users, accounts = 20_000, 2_000
    with open(path, "w") as f:
        for u in range(users):
            ts = (start + dt.timedelta(seconds=u)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            f.write(json.dumps({"type": "identify", "userId": f"u{u}", "anonymousId": f"anon-{u}",
                                "messageId": f"id-{u}", "timestamp": ts,
                                "traits": {"email": f"user{u}@company{u % accounts}.io",
                                           "title": "VP Sales" if u % 50 == 0 else "Engineer",
                                           "createdAt": ts}}) + "\n")
            f.write(json.dumps({"type": "group", "userId": f"u{u}", "groupId": f"a{u % accounts}",
                                "messageId": f"gr-{u}", "timestamp": ts,
                                "traits": {"domain": f"company{u % accounts}.io",
                                           "employees": 10 + (u % accounts), "industry": "software"}})
                    + "\n")
        while size < gb * 1e9:
            ts = (start + dt.timedelta(seconds=20_000 + i * 3)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            line = _LINE.format(i=i, u=(i * 7919) % users, ip=i % 250, ts=ts,
                                event=_EVENTS[i % len(_EVENTS)], b=i % 5000)
            if i % 1000 == 999:
                line, broken = line[: len(line) // 2], broken + 1
            f.write(line + "\n")
            size += len(line) + 1
            i += 1
    return {"track_lines": i, "broken": broken, "bytes": path.stat().st_size}


def _child(tool: str, folder: Path) -> None:
    data = folder / "segment.jsonl"
    t = time.perf_counter()
    if tool == "pqlml":
        from pqlml.config import DataConfig, ExportConfig
        from pqlml.sources import load_tables
        con, tables, report = load_tables(DataConfig(root=folder, export=ExportConfig(
            "segment", "segment.jsonl", max_reject_rate=0.01)))
        rows = {n: int(tb.count().execute()) for n, tb in tables.items()}
        rejected = sum(f.rows for f in report if f.kind.startswith("rejected_"))
        extra = {"rows": rows, "rejected": rejected}
    elif tool == "duckdb":
        import duckdb
        arrow = duckdb.sql(f"SELECT * FROM read_ndjson('{data}', ignore_errors=true, "
                           "maximum_object_size=1048576)").to_arrow_table()
        extra = {"rows": arrow.num_rows}
    else:
        import polars as pl
        clean = folder / "segment.clean.jsonl"
        if not clean.exists():
            raise SystemExit(f"missing {clean}")
        extra = {"rows": pl.read_ndjson(clean).height}
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
                     | extra))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gb", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", type=Path, default=ROOT / "data" / "generated" / "segment_1gb")
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return _child(args.child, args.data)
    data = args.data / "segment.jsonl"
    if not data.exists():
        print(f"writing {args.gb} GB of Segment JSON lines to {data}", file=sys.stderr)
        info = _generate(data, args.gb)
        (args.data / "info.json").write_text(json.dumps(info))
        with open(data) as src, open(args.data / "segment.clean.jsonl", "w") as dst:
            for line in src:
                if line.rstrip().endswith("}"):
                    dst.write(line)
    info = json.loads((args.data / "info.json").read_text())
    runs = {}
    for r in range(args.repeats):
        for tool in args.tools.split(","):
            out = subprocess.run([sys.executable, __file__, "--child", tool, "--data", str(args.data)],
                                 capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{tool} failed")
            runs.setdefault(tool, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"run {r + 1}/{args.repeats} {tool}: {runs[tool][-1]['seconds']:.1f} s", file=sys.stderr)
    print(f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{info['bytes'] / 1e9:.2f} GB, {info['track_lines']:,} track lines ({info['broken']:,} broken) "
          f"+ 40,000 identify/group lines; {args.repeats} fresh-process runs each.\n")
    print("| tool | median s | MB/s | peak RSS (MB) | rows out | vs pqlml |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(x["seconds"] for x in runs["pqlml"]) if "pqlml" in runs else None
    for tool, v in runs.items():
        s = statistics.median(x["seconds"] for x in v)
        rows = v[0]["rows"]
        shown = (f"events {rows['events']:,}, users {rows['users']:,}, accounts {rows['accounts']:,}; "
                 f"{v[0]['rejected']:,} rejected") if isinstance(rows, dict) else f"{rows:,}"
        print(f"| {tool} | {s:.1f} | {info['bytes'] / 1e6 / s:,.0f} | "
              f"{statistics.median(x['peak_rss_mb'] for x in v):,.0f} | {shown} | "
              f"{(s / base) if base else float('nan'):.2f}x |")


if __name__ == "__main__":
    main()
