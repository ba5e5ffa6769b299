"""Write a simulated company as a Segment, Amplitude or Mixpanel export (or Segment's
warehouse tables), in each vendor's documented shape, with a ``pqlml.toml`` that reads it back through :mod:`pqlml.readers`.

Users become identify calls (email, title, ``createdAt`` = sign-up) and group calls
(membership, company traits); events become track calls / export rows. Outcomes stay a
canonical table. Reading the export back must give the same features as the original
(a test checks it). A ``memberships.parquet`` beside the tables (``user_id``,
``account_id``, ``since``: users moving between accounts) becomes a group call at each
move (Segment) and the group carried by each event at its time (Amplitude, Mixpanel).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd

from ..outputs import write_text
from ..schema import SIGNUP_ANSWERS

__all__ = ["export_company", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("segment", "amplitude", "mixpanel", "segment_warehouse")


def _iso(ts) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _amp_time(ts) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S.%f")


def _none(v):
    """A JSON-ready scalar: None for missing, Python ints and floats for numpy ones."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if hasattr(v, "item"):
        v = v.item()
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _traits(a) -> dict:
    return {k: _none(getattr(a, k)) for k in ("domain", "employees", "industry", "country", "segment")
            if hasattr(a, k)}


def _tables(folder: Path):
    """Events (each with ``account_then``: its user's account at its time), users, accounts and
    the group calls (``user_id``, ``account_id``, ``ts``: the sign-up's, then each move)."""
    ev = pd.read_parquet(folder / "events.parquet").sort_values(["ts", "event_id"])
    users = pd.read_parquet(folder / "users.parquet")
    accounts = pd.read_parquet(folder / "accounts.parquet").set_index("account_id", drop=False)
    calls = users.loc[users.account_id.notna(), ["user_id", "account_id", "signup_at"]] \
        .rename(columns={"signup_at": "ts"})
    moves = folder / "memberships.parquet"
    if moves.exists():
        calls = pd.concat([calls, pd.read_parquet(moves).rename(columns={"since": "ts"})])
    calls = calls.astype({"ts": "datetime64[us, UTC]"}).sort_values(["ts", "user_id"]) \
        .reset_index(drop=True)
    at = pd.merge_asof(ev.reset_index().astype({"ts": "datetime64[us, UTC]"}).sort_values("ts"),
                       calls.rename(columns={"account_id": "account_then"}), on="ts", by="user_id")
    base = users.set_index("user_id").account_id
    at["account_then"] = at["account_then"].fillna(at.user_id.map(base))
    ev = ev.assign(account_then=at.set_index("index")["account_then"].reindex(ev.index).to_numpy())
    return ev, users, accounts, calls


def _segment(folder: Path, out: Path) -> dict:
    ev, users, accounts, calls = _tables(folder)
    lines = []
    for u in users.itertuples():
        lines.append({"type": "identify", "userId": u.user_id, "messageId": f"id-{u.user_id}",
                      "timestamp": _iso(u.signup_at), "traits": {"email": u.email, "title": _none(u.title),
                                                                 "createdAt": _iso(u.signup_at)}})
    for i, c in enumerate(calls.itertuples()):
        a = accounts.loc[c.account_id]
        lines.append({"type": "group", "userId": c.user_id, "groupId": c.account_id,
                      "messageId": f"gr-{c.user_id}-{i}", "timestamp": _iso(c.ts),
                      "traits": _traits(a) | {"createdAt": _iso(a.created_at)}})
    with gzip.open(out / "segment.jsonl.gz", "wt") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
        for e in ev.itertuples():
            f.write(json.dumps({"type": "track", "userId": e.user_id, "event": e.event,
                                "messageId": str(e.event_id), "timestamp": _iso(e.ts),
                                "properties": {}}) + "\n")
    return {"format": "segment", "source": "segment.jsonl.gz"}


def _amplitude(folder: Path, out: Path) -> dict:
    ev, users, accounts, _ = _tables(folder)
    u = users.set_index("user_id")
    with zipfile.ZipFile(out / "amplitude.zip", "w") as z:
        for day, part in ev.groupby(ev.ts.dt.strftime("%Y-%m-%d")):
            rows = []
            for e in part.itertuples():
                who = u.loc[e.user_id]
                acct = e.account_then if isinstance(e.account_then, str) else None
                rows.append(json.dumps({
                    "$insert_id": str(e.event_id), "event_type": e.event, "user_id": e.user_id,
                    "device_id": None, "amplitude_id": None, "event_time": _amp_time(e.ts),
                    "user_creation_time": _amp_time(who.signup_at),
                    "user_properties": {"email": who.email, "title": _none(who.title)},
                    "groups": {"company_id": [acct]} if acct else {},
                    "group_properties": ({"company_id": {acct: _traits(accounts.loc[acct]) | {
                        "created_at": _iso(accounts.loc[acct].created_at)}}} if acct else {})}))
            z.writestr(f"123456/123456_{day}_0#0.json.gz", gzip.compress("\n".join(rows).encode()))
    return {"format": "amplitude", "source": "amplitude.zip"}


def _mixpanel(folder: Path, out: Path) -> dict:
    ev, users, accounts, _ = _tables(folder)
    with open(out / "mixpanel.jsonl", "w") as f:
        for e in ev.itertuples():
            props = {"time": int(pd.Timestamp(e.ts).value // 1_000_000), "distinct_id": e.user_id,
                     "$user_id": e.user_id, "$insert_id": str(e.event_id)}
            if isinstance(e.account_then, str):
                props["company_id"] = e.account_then
            f.write(json.dumps({"event": e.event, "properties": props}) + "\n")
    people = [{"$distinct_id": u.user_id, "$properties": {"$email": u.email, "title": _none(u.title),
              "$created": pd.Timestamp(u.signup_at).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")}}
              for u in users.itertuples()]
    write_text(json.dumps({"page": 0, "page_size": len(people), "results": people}), out / "people.json")
    used = set(ev.account_then.dropna())
    groups = [{"$distinct_id": a.account_id, "$properties": _traits(a) | {
        "$created": pd.Timestamp(a.created_at).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")}}
        for a in accounts.itertuples() if a.account_id in used]
    write_text(json.dumps({"page": 0, "results": groups}), out / "groups.json")
    return {"format": "mixpanel", "source": "mixpanel.jsonl", "people": "people.json",
            "groups": "groups.json"}


def _segment_warehouse(folder: Path, out: Path) -> dict:
    """Segment's warehouse tables as Parquet files (the layout a warehouse holds)."""
    ev, users, accounts, calls = _tables(folder)
    tables = out / "segment_prod"
    tables.mkdir(exist_ok=True)
    pd.DataFrame({"id": ev.event_id.astype(str), "timestamp": ev.ts, "user_id": ev.user_id,
                  "anonymous_id": None, "event": ev.event, "event_text": ev.event}
                 ).to_parquet(tables / "tracks.parquet")
    pd.DataFrame({"id": "id-" + users.user_id, "timestamp": users.signup_at, "user_id": users.user_id,
                  "email": users.email, "title": users.title, "created_at": users.signup_at}
                 ).to_parquet(tables / "identifies.parquet")
    members = calls.merge(accounts.reset_index(drop=True), on="account_id",
                          suffixes=("", "_account"))
    cols = [c for c in ("domain", "employees", "industry", "country", "segment") if c in members]
    pd.DataFrame({"id": "gr-" + members.user_id + "-" + members.index.astype(str),
                  "timestamp": members.ts,
                  "user_id": members.user_id, "group_id": members.account_id,
                  **{c: members[c] for c in cols}, "created_at": members.created_at}
                 ).to_parquet(tables / "groups.parquet")
    return {"format": "segment_warehouse", "source": "segment_prod"}


def export_company(folder, fmt: str, out) -> Path:
    """Write the simulated company in ``folder`` as a ``fmt`` export into ``out``; return
    the path of a ``pqlml.toml`` that reads it (outcomes, dispositions, enrichment, the
    enterprise list, the leads, touches and holdouts copied as they are; sign-up answers as a ``signups``
    table)."""
    folder, out = Path(folder), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    export = {"segment": _segment, "amplitude": _amplitude, "mixpanel": _mixpanel,
              "segment_warehouse": _segment_warehouse}[fmt](folder, out)
    for name in ("outcomes.parquet", "dispositions.parquet", "enrichment.csv",
                 "enterprise_domains.csv", "leads.parquet", "touches.parquet",
                 "holdouts.parquet"):
        if (folder / name).exists():    # leads since issue 26, touches and holdouts since 27
            shutil.copy(folder / name, out / name)
    # the sign-up answers travel as a signups table keyed by user id (the vendors' user ids)
    users = pd.read_parquet(folder / "users.parquet")
    users[["user_id", *SIGNUP_ANSWERS]].to_parquet(out / "signups.parquet", index=False)
    text = (folder / "pqlml.toml").read_text()
    block = "[data.export]\n" + "".join(f'{k} = "{v}"\n' for k, v in export.items())
    for name in ("events", "users", "accounts"):
        text = text.replace(f'[data.{name}]\nsource = "{name}.parquet"\n', "")
    # moves travel as group calls: the export provides the memberships
    text = re.sub(r'\[data\.memberships\]\nsource = "[^"\n]*"\n\n?', "", text)
    text = text.replace("[data.outcomes]", block + '\n[data.signups]\nsource = "signups.parquet"\n'
                        "\n[data.outcomes]")
    write_text(text, out / "pqlml.toml")
    return out / "pqlml.toml"
