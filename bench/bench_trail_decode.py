"""Benchmark: CPU per event of each decoding step on one core, same files, same process.

    .venv/bin/python bench/bench_trail_decode.py DIR [--files 200] [--repeat 3]

DIR holds gzip trail files (e.g. the logs `bench/bench_trail.py --dir D --keep` generates, under D/logs).
Prints CPU microseconds per event (best of --repeat) for ISA-L gunzip alone, the native fast path
(``fastpath.decode_tables``, files gathered as ingest gathers them) and the msgspec path (``decode.decode_into``
+ ``cache.columns_to_table``), and their ratios to gunzip: on a shared machine the ratios are the figures.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from isal import igzip

from kmsguard.trail import cache, decode, fastpath


def best_cpu(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    files = sorted(str(p) for p in args.dir.rglob("*.json.gz"))[: args.files]
    if not files:
        raise SystemExit(f"{args.dir}: no *.json.gz files")
    raw = [Path(f).read_bytes() for f in files]
    plain = [igzip.decompress(r) for r in raw]
    events = sum(decode.decode_bytes(d, f)[1].kms for d, f in zip(plain, files, strict=True))

    def gunzip() -> None:
        for r in raw:
            igzip.decompress(r)

    def fast() -> None:
        batch: list[tuple[bytes, str, decode.FileStats]] = []
        size = 0
        for d, f in zip(plain, files, strict=True):
            batch.append((d, f, decode.FileStats(f)))
            size += len(d)
            if size >= cache.FAST_BATCH_BYTES:
                fastpath.decode_tables(batch)
                batch, size = [], 0
        if batch:
            fastpath.decode_tables(batch)

    def msgspec_path() -> None:
        for d, f in zip(plain, files, strict=True):
            st = decode.FileStats(f)
            cols = decode.Columns()
            decode.decode_into(d, f, st, cols)
            cache.columns_to_table(cols, {f: st})

    print(f"{len(files)} files, {events:,} KMS events, {sum(map(len, plain)) / events:.0f} bytes/event decompressed")
    base = best_cpu(gunzip, args.repeat) / events * 1e6
    print(f"{'ISA-L gunzip':>22}: {base:6.2f} µs/event")
    steps = [("msgspec path", msgspec_path)]
    if fastpath.AVAILABLE:
        steps.insert(0, ("native fast path", fast))
    else:
        print("native fast path: not built (no C compiler at install time)")
    for name, fn in steps:
        us = best_cpu(fn, args.repeat) / events * 1e6
        print(f"{name:>22}: {us:6.2f} µs/event  ({us / base:.1f}x gunzip)")


if __name__ == "__main__":
    main()
