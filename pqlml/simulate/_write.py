"""Turn the simulator's arrays into the canonical tables and the truth, a chunk of accounts
at a time.

:class:`CompanyWriter` takes the chunks in turn. Accounts, users, the truth snapshots and the
two CSV files are appended as they come; each chunk's events go to a numeric part file
sorted by time, and :meth:`CompanyWriter.finish` merges the parts a week at a time into one
time-ordered ``events.parquet`` (``event_id`` is the row number), so memory is set by the
chunk, not the company. Outcomes and leads (a few per account) are kept until the end and
written sorted by time. Every file lands by rename only when the whole company is written.
"""

from __future__ import annotations

import shutil
import uuid
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..outputs import atomic, landing, safe_cells
from . import _params as P

_FIRST = ("ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jo",
          "kofi", "lena", "mo", "nia", "omar", "pia", "raj", "sara", "tom", "yuki")
_LAST = ("smith", "garcia", "muller", "kim", "rossi", "dubois", "silva", "khan", "berg",
         "novak", "okafor", "tanaka", "jensen", "moreau", "patel", "cohen")
_ROW_GROUP = 1 << 20
_PART_GROUP = 1 << 17           # row groups of a chunk's event part: the merge reads them in turn
_STREAMED = ("accounts.parquet", "users.parquet", "events.parquet", "truth/snapshots.parquet",
             "truth/touches.parquet", "enrichment.csv", "enterprise_domains.csv")


def _ts(sec: np.ndarray) -> pa.Array:
    start_us = int(P.START.timestamp()) * 1_000_000
    return pa.array(start_us + sec.astype(np.int64) * 1_000_000, type=pa.timestamp("us", tz="UTC"))


def _date(day: np.ndarray) -> np.ndarray:
    """Days since START as dates (``datetime64[D]``)."""
    return np.datetime64(P.START.date(), "D") + day.astype("timedelta64[D]")


def _ids(prefix: str, n: int, width: int, start: int = 0) -> pa.Array:
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(start, start + n)], type=pa.string())


def account_ids(index: np.ndarray) -> pa.Array:
    """The id of each account number: ``a000042``."""
    return pa.array([f"a{i:06d}" for i in index], type=pa.string())


def _dict(indices: np.ndarray, dictionary: pa.Array, mask: np.ndarray | None = None) -> pa.Array:
    idx = pa.array(indices.astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(idx, dictionary)


def _factorized(codes: np.ndarray, names: pa.Array, mask: np.ndarray | None = None) -> pa.Array:
    """``names[codes]`` dictionary-encoded with only the names used (masked rows null)."""
    local, used = pd.factorize(codes, sort=False)
    return _dict(local, names.take(pa.array(used)), mask)


def _write(table: pa.Table, path: Path) -> None:
    # store_schema=False: the Parquet file stays dictionary-encoded, but readers
    # see plain strings rather than Arrow dictionary (categorical) columns.
    with atomic(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", store_schema=False,
                       row_group_size=_ROW_GROUP)


class _Appender:
    """Parquet files that grow a table at a time (the schema is the first table's)."""

    def __init__(self, stack: ExitStack):
        self._stack, self._writers = stack, {}

    def add(self, path: Path, table: pa.Table, row_group_size: int = _ROW_GROUP) -> None:
        w = self._writers.get(path)
        if w is None:
            w = self._writers[path] = self._stack.enter_context(pq.ParquetWriter(
                path, table.schema, compression="zstd", store_schema=False))
        elif table.schema != w.schema:
            table = table.cast(w.schema)
        w.write_table(table, row_group_size=row_group_size)


class CompanyWriter:
    """Write a simulated company chunk by chunk into ``out``; use as a context manager.

    Examples
    --------
    See :func:`pqlml.simulate.simulate`, the only caller.
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.n_accounts = self.n_users = self.n_joined = 0
        self.counts = {"enrichment": 0, "enterprise_domains": 0}
        self._outcomes, self._leads, self._parts = [], [], []
        self._buyers, self._market, self._touches, self._holdouts = [], [], [], []

    def __enter__(self):
        self._stack = ExitStack().__enter__()
        temps = self._stack.enter_context(landing(*(self.out / n for n in _STREAMED)))
        self._tmp = dict(zip(_STREAMED, temps))
        self._part_dir = self.out / f".events-parts-{uuid.uuid4().hex[:8]}"
        self._part_dir.mkdir()
        self._stack.callback(shutil.rmtree, self._part_dir, ignore_errors=True)
        self._files = ExitStack()
        self._append = _Appender(self._files)
        self._csv = {}
        return self

    def __exit__(self, *exc):
        self._files.close()
        for f in self._csv.values():
            f.close()
        return self._stack.__exit__(*exc)

    def add(self, rng, c, domains, activity, free, outcomes, profile_rng) -> int:
        """One chunk's accounts, users, events, outcomes and truth (``c`` and its arrays
        number accounts and users from 0); draws names from ``rng`` and sign-up answers
        from ``profile_rng``. Returns the number of the chunk's first account."""
        from ._profiles import signup_answers

        a0, u0 = self.n_accounts, self.n_users
        n_pot = len(c.user_account)
        free_signup = free[0]
        n_free = len(free_signup)
        acc_ids = _ids("a", c.n, 6, a0)
        user_ids = _ids("u", n_pot + n_free, 7, u0)
        self._append.add(self._tmp["accounts.parquet"], pa.table({
            "account_id": acc_ids,
            "domain": pa.array(domains, type=pa.string()),
            "employees": pa.array(c.employees),
            "industry": pa.array(np.array(P.INDUSTRIES)[c.industry]),
            "country": pa.array(np.array(P.COUNTRIES)[c.country]),
            "created_at": _ts(c.created_sec),
            "segment": pa.array(np.array(P.SEGMENTS)[c.segment]),
        }))
        joined = np.flatnonzero(activity.signup_sec >= 0)
        first = rng.integers(0, len(_FIRST), size=len(joined) + n_free)
        last = rng.integers(0, len(_LAST), size=len(joined) + n_free)
        mail = rng.integers(0, len(P.FREE_MAIL), size=n_free)
        dom = [domains[a] for a in c.user_account[joined]] + [P.FREE_MAIL[m] for m in mail]
        uid = np.concatenate([joined, n_pot + np.arange(n_free)])
        emails = [f"{_FIRST[f]}.{_LAST[g]}{u + u0}@{d}" for f, g, u, d in zip(first, last, uid, dom)]
        titles = np.where(c.user_buyer[joined],
                          np.array(P.BUYER_TITLES)[c.user_title[joined] % len(P.BUYER_TITLES)],
                          np.array(P.OTHER_TITLES)[c.user_title[joined] % len(P.OTHER_TITLES)])
        free_titles = np.array(P.OTHER_TITLES)[rng.integers(0, len(P.OTHER_TITLES), size=n_free)]
        self._append.add(self._tmp["users.parquet"], pa.table({
            "user_id": user_ids.take(pa.array(uid)),
            "email": pa.array(emails, type=pa.string()),
            "title": pa.array(np.concatenate([titles, free_titles]).astype(str), type=pa.string()),
            "signup_at": _ts(np.concatenate([activity.signup_sec[joined], free_signup])),
            "account_id": _dict(np.concatenate([c.user_account[joined], np.zeros(n_free, int)]),
                                acc_ids, np.arange(len(uid)) >= len(joined)).cast(pa.string()),
            **{k: pa.array(v, type=pa.string()) for k, v in
               signup_answers(profile_rng, c, joined, titles, n_free).items()},
        }))
        self._add_events(c, activity, free, outcomes, a0, u0)
        self._outcomes.append((outcomes.account + a0, outcomes.user + u0, outcomes.sec,
                               outcomes.kind, outcomes.event, outcomes.amount))
        self._add_truth(outcomes.truth, a0)
        self.n_accounts += c.n
        self.n_users += n_pot + n_free
        self.n_joined += len(uid)
        return a0

    def add_profiles(self, enrichment: pd.DataFrame, enterprise: pd.DataFrame) -> None:
        """Append a chunk's enrichment rows and enterprise domains to the two CSV files."""
        for name, frame in (("enrichment.csv", enrichment), ("enterprise_domains.csv", enterprise)):
            f = self._csv.get(name)
            if f is None:
                f = self._csv[name] = open(self._tmp[name], "w", newline="")
                safe_cells(frame).to_csv(f, index=False)
            else:
                safe_cells(frame).to_csv(f, index=False, header=False)
            self.counts[name.removesuffix(".csv")] += len(frame)

    def add_buyers(self, buyers, first_account: int, first_user: int) -> None:
        """A chunk's buyers (:mod:`pqlml.simulate._buyers`): its outcomes (the last chunk
        added) now carry the buyer's user, or none where the buyer is outside the product."""
        acc, _, *rest = self._outcomes[-1]
        user = buyers.user[acc - first_account]
        self._outcomes[-1] = (acc, np.where(user < 0, -1, user + first_user), *rest)
        n = len(buyers.user)
        self._buyers.append((np.arange(first_account, first_account + n),
                             np.where(buyers.user < 0, -1, buyers.user + first_user),
                             buyers.p_in_product, buyers.reference_sec))
        self._market.append(buyers.leads.assign(account=buyers.leads.account + first_account))

    def add_touches(self, touches: dict, segment: np.ndarray, first_account: int,
                    experiments: bool = True) -> None:
        """A chunk's touches (:meth:`pqlml.simulate._touches.TouchWorld.record`; ``segment``
        the chunk's accounts' segment indices): its truth is appended, its touches and
        holdouts kept until :meth:`finish` (no holdouts table without ``experiments``)."""
        from ._feedback import REPS
        from ._touches import KINDS

        t = touches["truth"]
        self._append.add(self._tmp["truth/touches.parquet"], pa.table({
            "account_id": account_ids(t["account"] + first_account),
            "as_of": pa.array(_date(t["day"]), type=pa.date32()),
            "p_convert_touch": pa.array(t["p_convert_touch"]),
            "p_convert_no_touch": pa.array(t["p_convert_no_touch"]),
            "effect": pa.array(t["p_convert_touch"] - t["p_convert_no_touch"]),
            "touched": pa.array(t["touched"]),
            "randomised": pa.array(t["randomised"]),
            "arm": pa.array(np.array(["touch", "holdout"])[np.maximum(t["arm"], 0)],
                            mask=t["arm"] < 0, type=pa.string()),
            "segment": pa.array(np.array(P.SEGMENTS)[segment[t["account"]]]),
        }))
        x, h = touches["touches"], touches["holdouts"]
        self._touches.append(pd.DataFrame({
            "account": x["account"] + first_account, "sec": x["sec"],
            "kind": np.array(KINDS)[x["kind"]], "rep": np.array([r for r, _ in REPS])[x["rep"]]}))
        if experiments:
            self._holdouts.append(pd.DataFrame({
                "account": h["account"] + first_account, "sec": h["day"] * P.DAY,
                "experiment": "sales-touch-" + pd.DatetimeIndex(_date(h["day"])).strftime("%Y-%m"),
                "arm": np.array(["touch", "holdout"])[h["arm"]]}))

    def add_leads(self, leads: pd.DataFrame, first_account: int) -> None:
        """A chunk's worked leads (accounts numbered from 0 within the chunk)."""
        self._leads.append(leads.assign(account=leads.account + first_account))

    def _add_events(self, c, activity, free, outcomes, a0, u0) -> None:
        n_pot = len(c.user_account)
        user = np.concatenate([activity.ev_user, free[1], outcomes.extra_user])
        kind = np.concatenate([activity.ev_kind, free[2], outcomes.extra_kind])
        sec = np.concatenate([activity.ev_sec, free[3], outcomes.extra_sec])
        order = np.argsort(sec, kind="stable")
        user, kind, sec = user[order], kind[order], sec[order]
        acc = np.where(user >= n_pot, -1, c.user_account[np.minimum(user, n_pot - 1)] + a0)
        part = self._part_dir / f"part-{len(self._parts):05d}.parquet"
        pq.write_table(pa.table({"sec": sec, "user": user.astype(np.int64) + u0,
                                 "account": acc.astype(np.int64), "kind": kind}),
                       part, row_group_size=_PART_GROUP, compression="lz4")
        self._parts.append(part)

    def _add_truth(self, t: dict, a0: int) -> None:
        cols = {"account_id": account_ids(t["account"] + a0),
                "as_of": _ts(t["day"].astype(np.int64) * P.DAY)}
        for k, v in t.items():
            if k not in ("account", "day"):
                cols[k] = pa.array(v)
        self._append.add(self._tmp["truth/snapshots.parquet"], pa.table(cols))

    def finish(self, n_days: int, progress=None) -> dict:
        """Merge the event parts, write outcomes and leads; return the row counts."""
        from ._feedback import write_dispositions

        acc_ids = _ids("a", self.n_accounts, 6)
        user_ids = _ids("u", self.n_users, 7)
        n_events = self._merge_events(acc_ids, user_ids, n_days, progress)
        acc, user, sec, kind, event, amount = (np.concatenate(x) for x in zip(*self._outcomes))
        order = np.argsort(sec, kind="stable")
        kinds = np.array(["hand_raise", "conversion"])[kind]
        event_names = np.array(list(P.EVENT_TYPES) + ["closed_won"])[event]
        _write(pa.table({
            "account_id": acc_ids.take(pa.array(acc[order])),
            "user_id": user_ids.take(pa.array(user[order], mask=user[order] < 0)),
            "ts": _ts(sec[order]),
            "outcome": pa.array(kinds[order], type=pa.string()),
            "amount": pa.array(amount[order], from_pandas=True),
            "event": pa.array(event_names[order], type=pa.string()),
        }), self.out / "outcomes.parquet")
        self._files.close()
        for f in self._csv.values():
            f.close()
        leads = pd.concat(self._leads, ignore_index=True) if self._leads else None
        counts = {"accounts": self.n_accounts, "users": self.n_joined, "events": n_events,
                  "outcomes": len(order), **self.counts}
        counts["dispositions"] = write_dispositions(self.out, leads)
        if self._buyers:
            counts["leads"] = self._write_buyers(acc_ids, user_ids)
        if self._touches:
            counts["touches"], counts["holdouts"] = self._write_touches(acc_ids)
            if not self._holdouts:
                del counts["holdouts"]
        return counts

    def _write_touches(self, acc_ids) -> tuple[int, int]:
        """``touches.parquet`` and ``holdouts.parquet``, each sorted by time."""
        n = []
        for frames, name, cols in ((self._touches, "touches", ("kind", "rep")),
                                   (self._holdouts, "holdouts", ("experiment", "arm"))):
            if not frames:      # no experiments: no holdouts table
                n.append(0)
                continue
            t = pd.concat(frames, ignore_index=True).sort_values(["sec", "account"],
                                                                 kind="stable")
            _write(pa.table({"account_id": acc_ids.take(pa.array(t.account.to_numpy())),
                             "at": _ts(t.sec.to_numpy()),
                             **{c: pa.array(t[c].to_numpy(), type=pa.string()) for c in cols}}),
                   self.out / f"{name}.parquet")
            n.append(len(t))
        return n[0], n[1]

    def _write_buyers(self, acc_ids, user_ids) -> int:
        """``truth/buyers.parquet`` and the marketing leads (``leads.parquet``)."""
        acc, user, p_in, ref = (np.concatenate(x) for x in zip(*self._buyers))
        _write(pa.table({
            "account_id": acc_ids.take(pa.array(acc)),
            "buyer_user_id": user_ids.take(pa.array(user, mask=user < 0)),
            "buyer_in_product": pa.array(user >= 0),
            "p_buyer_in_product": pa.array(p_in),
            "reference_at": _ts(ref),
        }), self.out / "truth" / "buyers.parquet")
        leads = pd.concat(self._market, ignore_index=True).sort_values("sec", kind="stable")
        _write(pa.table({
            "account_id": acc_ids.take(pa.array(leads.account.to_numpy())),
            "ts": _ts(leads.sec.to_numpy()),
            # object: a company without leads has empty columns of no string dtype
            **{c: pa.array(leads[c].to_numpy(dtype=object), type=pa.string())
               for c in ("email", "title", "source")},
        }), self.out / "leads.parquet")
        return len(leads)

    def _merge_events(self, acc_ids, user_ids, n_days, progress) -> int:
        """The parts, each sorted by time, merged a week at a time into ``events.parquet``."""
        cursors = [_Cursor(p) for p in self._parts]
        path, pending, n_pending, n = self._tmp["events.parquet"], [], 0, 0
        week = 7 * P.DAY
        for hi in range(week, n_days * P.DAY + week, week):
            batch = pa.concat_tables([cur.before(hi) for cur in cursors])
            pending.append(batch)
            n_pending += batch.num_rows
            last = hi >= n_days * P.DAY
            if n_pending >= _ROW_GROUP or last:
                n = self._write_events(path, pa.concat_tables(pending), n, acc_ids, user_ids)
                pending, n_pending = [], 0
            if progress is not None:
                progress()
        return n

    def _write_events(self, path, t, first_id, acc_ids, user_ids) -> int:
        sec = t["sec"].to_numpy()
        order = np.argsort(sec, kind="stable")
        user, acc = t["user"].to_numpy()[order], t["account"].to_numpy()[order]
        free = acc < 0
        self._append.add(path, pa.table({
            "event_id": pa.array(np.arange(first_id, first_id + len(sec), dtype=np.int64)),
            "ts": _ts(sec[order]),
            "user_id": _factorized(user, user_ids),
            "account_id": _factorized(np.where(free, 0, acc), acc_ids, free),
            "event": _dict(t["kind"].to_numpy()[order], pa.array(P.EVENT_TYPES)),
        }))
        return first_id + len(sec)


class _Cursor:
    """Reads a time-sorted part file forward, a time window at a time."""

    def __init__(self, path: Path):
        self._file = pq.ParquetFile(path)
        self._next, self._rest = 0, None

    def before(self, hi: int) -> pa.Table:
        """The rows not yet returned with ``sec < hi``."""
        out = []
        while True:
            if self._rest is None or self._rest.num_rows == 0:
                if self._next == self._file.num_row_groups:
                    break
                self._rest = self._file.read_row_group(self._next)
                self._next += 1
            cut = int(np.searchsorted(self._rest["sec"].to_numpy(), hi, side="left"))
            out.append(self._rest.slice(0, cut))
            self._rest = self._rest.slice(cut)
            if self._rest.num_rows:
                break
        return pa.concat_tables(out) if out else self._file.schema_arrow.empty_table()


def write_drivers(out: Path) -> None:
    """``truth/drivers.csv``: every signal, its transform and effect."""
    import csv

    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    with atomic(truth_dir / "drivers.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "transform", "effect", "effect_hand_raise", "role", "definition"])
        w.writerow(["(intercept)", "identity", P.INTERCEPT, P.INTERCEPT_HAND_RAISE, "intercept",
                    f"p_convert = sigmoid(intercept + sum(effect * transform(x))); "
                    f"p_hand_raise = p_convert * {P.CONVERTER_HAND_RAISE} + (1 - p_convert) * "
                    "sigmoid(intercept_hr + sum(effect_hand_raise * transform(x)))"])
        for s in P.SIGNALS:
            w.writerow([s.name, s.transform, s.effect, s.effect_hand_raise, s.role, s.definition])
