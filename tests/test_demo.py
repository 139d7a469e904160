"""The README's first quick-start command: the demo study runs every stage, refreshes, writes the tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end


def test_the_demo_study_runs_every_stage(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    done = subprocess.run(
        [sys.executable, "-m", "tiktok_spiders.demo", "--data-dir", str(data_dir)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    for stage in (
        "videos",
        "comments",
        "replies",
        "users",
        "followers",
        "following",
        "liked_videos",
        "pinned_videos",
        "reposted_videos",
        "playlists",
    ):
        assert (data_dir / f"{stage}.jsonl").stat().st_size > 0, stage
    assert "Done. The study is in" in done.stdout
    videos = pd.read_parquet(data_dir / "tables" / "videos.parquet")
    assert len(videos) > 50 and videos["url"].str.startswith("https://www.tiktok.com/@").all()
    shared = pd.read_parquet(data_dir / "tables-pseudonymized" / "videos.parquet")
    assert shared["id"].tolist() == videos["id"].tolist()
    assert shared["username"].str.startswith("user_").all() and not set(shared["username"]) & set(videos["username"])
    refresh = done.stderr.split("Summary of refresh: complete.")[1]
    assert "found gone in this run: nothing" not in refresh, "the demo shows a purge"
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["refreshes"][0]["finished"] and manifest["refreshes"][0]["purged"]["videos"] > 0
