"""Turn the simulator's arrays into the four canonical tables, the truth and a config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..outputs import atomic
from . import _params as P

_FIRST = ("ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jo",
          "kofi", "lena", "mo", "nia", "omar", "pia", "raj", "sara", "tom", "yuki")
_LAST = ("smith", "garcia", "muller", "kim", "rossi", "dubois", "silva", "khan", "berg",
         "novak", "okafor", "tanaka", "jensen", "moreau", "patel", "cohen")


def _ts(sec: np.ndarray) -> pa.Array:
    start_us = int(P.START.timestamp()) * 1_000_000
    return pa.array(start_us + sec.astype(np.int64) * 1_000_000, type=pa.timestamp("us", tz="UTC"))


def _ids(prefix: str, n: int, width: int) -> pa.Array:
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(n)], type=pa.string())


def _dict(indices: np.ndarray, dictionary: pa.Array, mask: np.ndarray | None = None) -> pa.Array:
    idx = pa.array(indices.astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(idx, dictionary)


def _write(table: pa.Table, path: Path) -> None:
    # store_schema=False: the Parquet file stays dictionary-encoded, but readers
    # see plain strings rather than Arrow dictionary (categorical) columns.
    with atomic(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", store_schema=False,
                       row_group_size=1 << 20)


def write_tables(out: Path, rng, c, domains, activity, free, outcomes, profile_rng) -> dict:
    """Write accounts, users (with sign-up answers drawn from ``profile_rng``), events and
    outcomes; return row counts."""
    from ._profiles import signup_answers

    n_pot = len(c.user_account)
    free_signup = free[0]
    account_ids = _ids("a", c.n, 6)
    user_ids = _ids("u", n_pot + len(free_signup), 7)
    _write(pa.table({
        "account_id": account_ids,
        "domain": pa.array(domains),
        "employees": pa.array(c.employees),
        "industry": pa.array(np.array(P.INDUSTRIES)[c.industry]),
        "country": pa.array(np.array(P.COUNTRIES)[c.country]),
        "created_at": _ts(c.created_sec),
        "segment": pa.array(np.array(P.SEGMENTS)[c.segment]),
    }), out / "accounts.parquet")
    joined = np.flatnonzero(activity.signup_sec >= 0)
    n_free = len(free_signup)
    first = rng.integers(0, len(_FIRST), size=len(joined) + n_free)
    last = rng.integers(0, len(_LAST), size=len(joined) + n_free)
    mail = rng.integers(0, len(P.FREE_MAIL), size=n_free)
    dom = [domains[a] for a in c.user_account[joined]] + [P.FREE_MAIL[m] for m in mail]
    uid = np.concatenate([joined, n_pot + np.arange(n_free)])
    emails = [f"{_FIRST[f]}.{_LAST[g]}{u}@{d}" for f, g, u, d in zip(first, last, uid, dom)]
    titles = np.where(c.user_buyer[joined], np.array(P.BUYER_TITLES)[c.user_title[joined] % len(P.BUYER_TITLES)],
                      np.array(P.OTHER_TITLES)[c.user_title[joined] % len(P.OTHER_TITLES)])
    free_titles = np.array(P.OTHER_TITLES)[rng.integers(0, len(P.OTHER_TITLES), size=n_free)]
    _write(pa.table({
        "user_id": user_ids.take(pa.array(uid)),
        "email": pa.array(emails),
        "title": pa.array(np.concatenate([titles, free_titles])),
        "signup_at": _ts(np.concatenate([activity.signup_sec[joined], free_signup])),
        "account_id": _dict(np.concatenate([c.user_account[joined], np.zeros(n_free, int)]),
                            account_ids, np.arange(len(uid)) >= len(joined)).cast(pa.string()),
        **{k: pa.array(v, type=pa.string()) for k, v in
           signup_answers(profile_rng, c, joined, titles, n_free).items()},
    }), out / "users.parquet")
    n_events = _write_events(out, c, activity, free, outcomes, account_ids, user_ids)
    kinds = np.array(["hand_raise", "conversion"])[outcomes.kind]
    event_names = np.array(list(P.EVENT_TYPES) + ["closed_won"])[outcomes.event]
    order = np.argsort(outcomes.sec, kind="stable")
    _write(pa.table({
        "account_id": account_ids.take(pa.array(outcomes.account[order])),
        "user_id": user_ids.take(pa.array(outcomes.user[order])),
        "ts": _ts(outcomes.sec[order]),
        "outcome": pa.array(kinds[order]),
        "amount": pa.array(outcomes.amount[order], from_pandas=True),
        "event": pa.array(event_names[order]),
    }), out / "outcomes.parquet")
    return {"accounts": c.n, "users": len(uid), "events": n_events, "outcomes": len(order)}


def _write_events(out, c, activity, free, outcomes, account_ids, user_ids) -> int:
    n_pot = len(c.user_account)
    user = np.concatenate([activity.ev_user, free[1], outcomes.extra_user])
    kind = np.concatenate([activity.ev_kind, free[2], outcomes.extra_kind])
    sec = np.concatenate([activity.ev_sec, free[3], outcomes.extra_sec])
    order = np.argsort(sec, kind="stable")
    user, kind, sec = user[order], kind[order], sec[order]
    is_free = user >= n_pot
    acc = np.where(is_free, 0, c.user_account[np.minimum(user, n_pot - 1)])
    table = pa.table({
        "event_id": pa.array(np.arange(len(user), dtype=np.int64)),
        "ts": _ts(sec),
        "user_id": _dict(user, user_ids),
        "account_id": _dict(acc, account_ids, is_free),
        "event": _dict(kind, pa.array(P.EVENT_TYPES)),
    })
    _write(table, out / "events.parquet")
    return len(user)


def write_truth(out: Path, outcomes, snapshot_days) -> None:
    """``truth/drivers.csv`` and ``truth/snapshots.parquet``."""
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
    t = outcomes.truth
    cols = {"account_id": pa.array([f"a{i:06d}" for i in t["account"]]),
            "as_of": _ts(t["day"].astype(np.int64) * P.DAY)}
    for k, v in t.items():
        if k not in ("account", "day"):
            cols[k] = pa.array(v)
    _write(pa.table(cols), truth_dir / "snapshots.parquet")
