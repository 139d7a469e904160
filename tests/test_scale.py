"""Tables at any size: peak memory stays flat as a study doubles (bench/scale.py measures 10M rows)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiktok_spiders import tables

pytestmark = pytest.mark.slow  # commands on a synthetic study of hundreds of thousands of rows


def synthetic_study(data_dir: Path, comments: int) -> None:
    """Feeds as the spiders write them: ``comments`` comments on a tenth as many videos."""
    data_dir.mkdir()
    video = 7_200_000_000_000_000_000
    with (data_dir / "comments.jsonl").open("w", encoding="utf-8") as feed:
        for number in range(comments):
            record = {
                "id": 7_300_000_000_000_000_000 + number,
                "video_id": video + number // 10,
                "text": "so true 😂" if number % 2 else 'a "quoted", comma',
                "like_count": number % 97,
                "reply_count": number % 3,
                "parent_comment_id": video + number // 10,
                "create_time": 1_704_000_000 + number,
                "collected_at": "2026-12-01T10:00:00Z",
            }
            feed.write(json.dumps(record, ensure_ascii=False) + "\n")
    with (data_dir / "videos.jsonl").open("w", encoding="utf-8") as feed:
        for number in range(comments // 10):
            record = {"id": video + number, "username": f"user{number}", "create_time": 1_704_000_000 + number}
            feed.write(json.dumps({**record, "hashtag_names": ["climate"], "collected_at": "2026-12-01T10:00:00Z"}))
            feed.write("\n")


def peak_mb(*args: str) -> float:
    """The peak resident memory of ``tiktok-spiders tables`` (its own process, as a user runs it)."""
    env = {**os.environ, "TIKTOK_TABLES_MEMORY_MB": "64"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tiktok_spiders.cli", "tables", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, for its rusage
    assert process.stderr is not None
    errors = process.stderr.read().decode()
    process.stderr.close()
    assert process.returncode == 0, errors
    return usage.ru_maxrss / 1024


def test_the_tables_of_a_study_twice_as_big_need_no_more_memory(tmp_path: Path) -> None:
    peaks = {}
    for comments in (200_000, 400_000):
        data_dir = tmp_path / f"study-{comments}"
        synthetic_study(data_dir, comments)
        peaks[comments] = peak_mb("comments", "--data-dir", str(data_dir), "--output-dir", str(data_dir / "t"))
        table = tables.read_table(data_dir / "t" / "comments.parquet")
        assert table["id"].tolist() == [7_300_000_000_000_000_000 + n for n in range(comments)]
        last_video = (comments - 1) // 10
        url = f"https://www.tiktok.com/@user{last_video}/video/{7_200_000_000_000_000_000 + last_video}"
        assert table["video_url"].iloc[-1] == url
    # whole frames grew by about half as the study doubled (299 -> 446 MB); chunks stay within noise
    assert peaks[400_000] <= peaks[200_000] * 1.15, peaks


def test_ctrl_c_while_tables_are_written_leaves_no_half_file_and_no_staging(tmp_path: Path) -> None:
    data_dir = tmp_path / "study"
    synthetic_study(data_dir, 200_000)
    out = tmp_path / "tables"
    with subprocess.Popen(
        [sys.executable, "-m", "tiktok_spiders.cli", "tables", "--data-dir", str(data_dir), "--output-dir", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        deadline = time.monotonic() + 60
        while not (out / ".tables-staging" / "staging.duckdb").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)  # while the feeds are being staged
        said, errors = process.communicate(timeout=60)
    assert process.returncode == 1 and "Traceback" not in errors, errors
    assert errors.strip().splitlines()[-1].startswith("interrupted: "), errors
    assert [path.name for path in out.iterdir()] == [], "no staging, no .partial, no table"
    assert said == ""
