"""Provenance: every record says when it was collected; the manifest says what produced the study."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.conftest import STUDY_ARGS, STUDY_QUERY, cli_env, crawl, read_jsonl, scrapy_cli, settings_for
from tiktok_spiders import tables
from tiktok_spiders.emulator import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, Emulator
from tiktok_spiders.query import Query
from tiktok_spiders.spiders.comments import CommentsSpider
from tiktok_spiders.spiders.videos import VideosSpider

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@deferred_f_from_coro_f
async def test_records_carry_collected_at_and_the_manifest_says_what_made_them(
    emulator: Emulator, tmp_path: Path
) -> None:
    settings = settings_for(emulator, tmp_path)
    before = datetime.now(UTC).replace(microsecond=0)
    await crawl(VideosSpider, settings, **STUDY_ARGS)
    await crawl(CommentsSpider, settings, min_comments="5")
    after = datetime.now(UTC)

    videos = read_jsonl(tmp_path / "videos.jsonl")
    comments = read_jsonl(tmp_path / "comments.jsonl")
    for record in (*videos, *comments):
        assert before <= utc(record["collected_at"]) <= after
    frame = tables.load(tmp_path / "videos.csv")
    assert str(frame["collected_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["collected_at"].iloc[0] == utc(videos[0]["collected_at"])

    text = (tmp_path / "manifest.json").read_text(encoding="utf-8")
    assert DEMO_CLIENT_KEY not in text and DEMO_CLIENT_SECRET not in text and "clt." not in text
    manifest = json.loads(text)
    assert manifest["api_base_url"] == emulator.base_url
    assert manifest["tool"]["scrapy"].startswith("2.") and manifest["tool"]["tiktok-spiders"]
    video_stage, comment_stage = manifest["stages"]["videos"], manifest["stages"]["comments"]
    [run] = video_stage["runs"]
    assert run["arguments"] == STUDY_ARGS
    assert run["sent"]["query"] == Query.parse(STUDY_QUERY).as_json()
    assert (run["sent"]["start_date"], run["sent"]["end_date"]) == ("20240101", "20240330")
    assert run["outcome"] == "finished" and video_stage["records"] == {"videos": len(videos)}
    assert video_stage["first_collected_at"] == min(record["collected_at"] for record in videos)
    assert video_stage["last_collected_at"] == max(record["collected_at"] for record in videos)
    assert comment_stage["runs"][0]["arguments"] == {"min_comments": "5"}
    assert comment_stage["records"] == {"comments": len(comments)}
    assert sum(manifest["requests_per_utc_day"].values()) == video_stage["requests"] + comment_stage["requests"]
    assert video_stage["api_coverage"].startswith("collected after the API's coverage change of 2026-02-26")
    assert "api_coverage" not in comment_stage  # the change widened which videos, not their comments


def test_the_manifest_says_which_side_of_the_coverage_change_a_stage_was_collected_on() -> None:
    from tiktok_spiders.manifest import coverage_note

    assert coverage_note(None, None) is None
    assert coverage_note("2026-01-05T10:00:00Z", "2026-02-25T23:59:59Z").startswith("collected before")
    assert coverage_note("2026-02-26T00:00:00Z", "2026-12-01T00:00:00Z").startswith("collected after")
    spanning = coverage_note("2026-02-20T00:00:00Z", "2026-03-01T00:00:00Z")
    assert spanning.startswith("collected both before and after") and "not comparable" in spanning


def test_a_quota_stop_counts_every_seed_one_way_and_says_what_is_left(fresh_emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(fresh_emulator, tmp_path / "data", TIKTOK_DAILY_REQUEST_LIMIT="5")
    study = tmp_path / "study.toml"
    arguments = {**STUDY_ARGS, "window_days": "7"}  # 13 windows, 5 requests
    study.write_text(
        '[study]\nstages = ["videos"]\n[videos]\n' + "".join(f'{k} = "{v}"\n' for k, v in arguments.items())
    )
    done = scrapy_cli(tmp_path, env, "study", str(study))
    assert done.returncode == 1
    summary = done.stderr.split("Summary of videos:")[1]
    match = re.search(r"windows: (\d+) done, (\d+) failed, (\d+) begun, (\d+) not started", summary)
    assert match, summary
    counts = [int(value) for value in match.groups()]
    assert sum(counts) == 13 and counts[3] > 0
    left = counts[1] + counts[2] + counts[3]
    assert f"left: {left} windows, at least {left} requests; next step: run the same command after 00:00 UTC" in summary
    row = next(line for line in done.stdout.splitlines() if line.startswith("videos "))
    assert row.split()[1:4] == ["stopped", "(exit", "1)"] and row.split()[4:8] == [str(value) for value in counts], (
        "the study table counts as the summary does"
    )
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["videos"]["runs"][-1]["seeds"] == dict(
        zip(("done", "failed", "begun", "not_started"), counts, strict=True)
    )
