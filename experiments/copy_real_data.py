"""Copy the real datasets from the shared folder into data/real/, once.

Why a script: the copies in the repo must be traceable to their source. BPI Challenge 2012 is
already Parquet and is copied byte for byte; UCI Bank Marketing is a 5.8 MB `;`-separated CSV,
stored here as Parquet (same 41,188 rows in the same order, same 21 columns and values) to keep
the repo small. The SHA-256 of every source file is printed for data/real/README.md.

    .venv/bin/python experiments/copy_real_data.py [--source /work/shared/data/real]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "real"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    src = ap.parse_args().source
    for name in ("events.parquet", "cases.parquet"):
        f = src / "bpi2012" / name
        (OUT / "bpi2012").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, OUT / "bpi2012" / name)
        print(f"bpi2012/{name}  sha256 {sha256(f)}  (copied as is)")
    f = src / "bank_marketing" / "bank-additional-full.csv"
    bank = pd.read_csv(f, sep=";")
    (OUT / "bank_marketing").mkdir(parents=True, exist_ok=True)
    out = OUT / "bank_marketing" / "bank-additional-full.parquet"
    bank.to_parquet(out, index=False)
    assert pd.read_parquet(out).equals(bank), "the Parquet copy differs from the CSV"
    print(f"bank_marketing/bank-additional-full.csv  sha256 {sha256(f)}  -> {out.name} "
          f"({len(bank):,} rows, {out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
