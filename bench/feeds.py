"""What a close costs when a big feed gains a few records: grown versus written whole.

    python bench/feeds.py --records 1000000 --new 10000

A synthetic ledger of comments (no HTTP), written once as JSON Lines and CSV;
then ``--new`` records are added and the feeds written again, first as they
grow (the default) and then whole, as every close did before.  Prints each
time, the ratio between them, and checks that both give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tiktok_spiders.feeds import write_feed
from tiktok_spiders.kinds import COMMENTS
from tiktok_spiders.ledger import Ledger


def comments(rng: random.Random, start: int, count: int) -> list[tuple[str, str]]:
    rows = []
    for number in range(start, start + count):
        record = {
            "id": 7_300_000_000_000_000_000 + number,
            "video_id": 7_200_000_000_000_000_000 + number // 30,
            "text": rng.choice(("OMG so cute", "no, just no", 'This is "exactly" right', "😂😂😂")),
            "like_count": rng.randint(0, 500),
            "reply_count": rng.randint(0, 5),
            "parent_comment_id": 7_200_000_000_000_000_000 + number // 30,
            "create_time": 1_704_000_000 + number,
            "display_name": "Someone ✨",
            "collected_at": "2026-12-01T10:00:00Z",
        }
        rows.append((str(record["id"]), json.dumps(record, ensure_ascii=False)))
    return rows


def store(ledger: Ledger, rows: list[tuple[str, str]]) -> None:
    ledger.connection.executemany("INSERT INTO records (kind, key, data) VALUES ('comments', ?, ?)", rows)
    ledger.commit()


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        ledger = Ledger(data_dir)
        for start in range(0, args.records, 100_000):
            store(ledger, comments(rng, start, min(100_000, args.records - start)))
        first = {
            fmt: timed(lambda f=fmt: write_feed(ledger, COMMENTS, data_dir / f"comments.{f}", f))
            for fmt in ("jsonl", "csv")
        }
        store(ledger, comments(rng, args.records, args.new))
        grown = {
            fmt: timed(lambda f=fmt: write_feed(ledger, COMMENTS, data_dir / f"comments.{f}", f))
            for fmt in ("jsonl", "csv")
        }
        whole_dir = data_dir / "whole"
        whole_dir.mkdir()
        whole = {
            fmt: timed(lambda f=fmt: write_feed(ledger, COMMENTS, whole_dir / f"comments.{f}", f))
            for fmt in ("jsonl", "csv")
        }
        for fmt in ("jsonl", "csv"):
            same = (data_dir / f"comments.{fmt}").read_bytes() == (whole_dir / f"comments.{fmt}").read_bytes()
            size = (data_dir / f"comments.{fmt}").stat().st_size / 1e6
            print(
                f"{fmt:5}  {args.records:,} records ({size:,.0f} MB): first write {first[fmt]:.2f} s; "
                f"{args.new:,} new: grown {grown[fmt]:.2f} s vs whole {whole[fmt]:.2f} s "
                f"= {whole[fmt] / grown[fmt]:.1f}x faster; same bytes: {same}"
            )
        ledger.close()


if __name__ == "__main__":
    main()
