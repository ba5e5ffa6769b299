"""CSV sources read with a dialect taken from the header, and their malformed lines counted.

DuckDB's CSV sniffer guesses the dialect from a sample of lines; a few malformed lines in
the sample (a line with too many fields, an unterminated quote) make it guess a dialect
under which the header is one column (``'ts,user_id,event'``), and every later message is
about missing columns that are in fact there. So the dialect comes from the header line
itself: its delimiter (the one of ``, ; TAB |`` that splits it into the most fields; TAB
for ``.tsv``), RFC 4180 quoting (``"``, doubled to escape) and its column names. Every
value is read as text (:mod:`pqlml.validate` parses them, counting failures).

Lines that do not fit the header (too many or too few fields, an unterminated quote) are
found in one counting scan with DuckDB's ``store_rejects``; the good rows are read and the
bad lines are never dropped silently: up to :data:`MAX_REJECT_RATE` of the lines they are
skipped with a counted finding naming their line numbers, above it loading stops with an
error naming them. An unterminated quote runs to the end of the file, so every line after
it counts as lost.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import itertools

import ibis

from ..config import ExportConfig
from ..errors import DataError
from ..validate import Finding, ValidationReport

__all__ = ["read_csv_source", "MAX_REJECT_RATE"]

#: The share of a CSV source's lines that may be malformed and skipped (with a finding)
#: before loading stops with an error: the same default as ``[data.export]
#: max_reject_rate`` for vendor exports, so a few broken lines in a large export are
#: reported, and a file that is mostly unreadable is refused.
MAX_REJECT_RATE = ExportConfig.max_reject_rate
_DELIMITERS = (",", ";", "\t", "|")
_SHOWN = 5
_REASONS = {"TOO MANY COLUMNS": "more fields than the header", "MISSING COLUMNS":
            "fewer fields than the header", "UNQUOTED VALUE": "a quote inside an unquoted value",
            "LINE SIZE OVER MAXIMUM": "a line longer than DuckDB's maximum line size",
            "INVALID ENCODING": "not UTF-8 text", "INVALID STATE": "an unterminated quote"}


def _open(path: str):
    raw = gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def _header(path: str, tab: bool) -> tuple[str, list[str]] | None:
    """The delimiter and column names of the file's first line; None for an empty file."""
    with _open(path) as f:
        first = f.readline()
    if not first.strip():
        return None
    delims = ("\t",) if tab else _DELIMITERS
    parsed = {d: next(csv.reader([first.rstrip("\r\n")], delimiter=d)) for d in delims}
    delim = max(delims, key=lambda d: len(parsed[d]))    # ties: the first, ','
    return delim, [c.strip() for c in parsed[delim]]


def _lines(path: str) -> int:
    with _open(path) as f:
        return sum(1 for _ in f)


def read_csv_source(con: ibis.BaseBackend, name: str, path: str,
                    report: ValidationReport | None) -> ibis.Table:
    """The CSV file(s) at ``path`` (a glob) as a lazy table of text columns; malformed lines
    skipped and counted in ``report``, or a :class:`DataError` above :data:`MAX_REJECT_RATE`."""
    where = f"{name} ({path})"
    files = sorted(glob.glob(path, recursive=True))
    tab = path.lower().endswith((".tsv", ".tsv.gz"))
    headers = [h for h in (_header(f, tab) for f in files) if h is not None]
    if not headers:
        raise DataError(f"{where}: the file is empty (not even a header line). Fix: export the "
                        f"table again with a header line and its rows.")
    delim, columns = headers[0]
    if len(headers) != len(files) or any(h != headers[0] for h in headers):
        # files with different headers: DuckDB unions them by name, as before
        return con.read_csv(path, all_varchar=True, union_by_name=True,
                            **({"delim": "\t"} if tab else {}))
    _check_names(where, columns)
    options = dict(delim=delim, quote='"', escape='"', header=True, auto_detect=False,
                   columns=dict.fromkeys(columns, "VARCHAR"))
    if con.name == "duckdb":
        _rejects(con, name, path, files, options, report)
    return con.read_csv(path, ignore_errors=True, **options)


def _check_names(where: str, columns: list[str]) -> None:
    blank = [i + 1 for i, c in enumerate(columns) if not c]
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if blank or dupes:
        what = (f"column(s) {', '.join(map(str, blank))} of the header have no name" if blank
                else f"the header names {', '.join(map(repr, dupes))} more than once")
        raise DataError(f"{where}: {what}, so the columns cannot be told apart. Fix: give "
                        f"every column of the header its own name.")


def _rejects(con, name: str, path: str, files: list[str], options: dict,
             report: ValidationReport | None) -> None:
    where = f"{name} ({path})"
    raw = con.con
    table, scan = ibis.util.gen_name("pqlml_rejects"), ibis.util.gen_name("pqlml_scan")
    rows = con.read_csv(files, store_rejects=True, rejects_table=table, rejects_scan=scan,
                        table_name=ibis.util.gen_name("pqlml_csv_check"), **options)
    good = int(rows.count().execute())
    bad = raw.sql(f"SELECT r.line, r.error_type, s.file_path, r.error_message FROM {table} r "
                  f"JOIN {scan} s USING (scan_id, file_id) ORDER BY s.file_path, r.line").fetchall()
    raw.execute(f"DROP TABLE IF EXISTS {table}; DROP TABLE IF EXISTS {scan}")
    if not bad:
        return
    seen = {}
    for line, kind, file, _ in bad:            # one error per line (a line can raise several)
        seen.setdefault((file, int(line)), kind)
    total = sum(_lines(f) - 1 for f in files)   # data lines, header excluded
    lost = max(total - good, len(seen))
    examples = "; ".join(f"{'' if len(files) == 1 else file + ' '}line {line}: "
                         f"{_REASONS.get(kind, kind.lower())}"
                         for (file, line), kind in itertools.islice(seen.items(), _SHOWN))
    more = f" (and {len(seen) - _SHOWN:,} more)" if len(seen) > _SHOWN else ""
    lines = f"{examples}{more}"
    if lost > MAX_REJECT_RATE * max(total, 1):
        tail = (" An unterminated quote makes the rest of the file one value." if lost > len(seen)
                else "")
        raise DataError(f"{where}: {lost:,} of {total:,} lines could not be read as rows with "
                        f"the header's {len(options['columns'])} columns ({lines}).{tail} "
                        f"Fix: repair those lines (quote values that contain "
                        f"{options['delim']!r} or quotes, doubling quotes inside them), or "
                        f"export the file again.")
    if report is not None:   # None: a caller listing values; loading the project reports them
        report.add(Finding(name, path, "line", "malformed_csv_lines", lost,
                           f"skipped: {lines}; the other {good:,} rows are read",
                           f"repair those lines (quote values that contain {options['delim']!r} "
                           f"or quotes), or export the file again"))
