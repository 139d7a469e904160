"""The plan: requests still to spend, stage by stage, from the seed feeds and the ledger."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from scrapy.settings import Settings

from tests.conftest import NoServer, settings_for
from tiktok_spiders import clock, plan
from tiktok_spiders.ledger import Ledger
from tiktok_spiders.spiders.comments import CommentsSpider
from tiktok_spiders.spiders.followers import FollowersSpider


def spider_for(spidercls: type, tmp_path: Path, **arguments: str):
    settings = Settings(settings_for(NoServer(), tmp_path / "data"))
    spider = spidercls.check(settings, **arguments)
    spider.settings = settings  # what a crawler would give it
    return spider, settings


def test_comments_cost_a_request_per_100_comments_each_video_once_less_what_the_ledger_has(tmp_path: Path) -> None:
    feed = tmp_path / "videos.jsonl"
    counts = {1: 0, 2: 150, 3: 250, 4: 30, 5: 1000}
    lines = [{"id": video, "comment_count": count} for video, count in counts.items()]
    feed.write_text("\n".join(json.dumps(line) for line in [*lines, lines[1], "oops"]) + "\n", encoding="utf-8")
    spider, settings = spider_for(CommentsSpider, tmp_path, videos=str(feed), min_comments="1")
    ledger = Ledger(tmp_path / "data")
    estimate = plan.estimate("comments", spider, ledger, settings)
    assert (estimate.requests, estimate.seeds, estimate.exact) == (2 + 3 + 1 + 10, 4, True), "video 1: below 1"

    ledger.finish_page("comments", "5", cursor=None, search_id=None, has_more=False)
    ledger.finish_page("comments", "3", cursor=100, search_id=None, has_more=True)  # 1 of its 3 pages stored
    estimate = plan.estimate("comments", spider, ledger, settings)
    assert (estimate.requests, estimate.seeds) == (2 + 2 + 1, 3)
    assert " ".join(estimate.line.split()) == "comments 5 requests for 3 videos left (from videos.jsonl)"
    ledger.close()


def test_the_summary_counts_each_quota_apart_and_says_by_which_day_the_study_is_done(tmp_path: Path) -> None:
    comments = plan.StageEstimate("comments", seeds=10, noun="video")
    comments.set_requests(plan.Range(2500, 2500, 2500), exact=True)
    followers_spider, settings = spider_for(FollowersSpider, tmp_path, usernames="ann,bob,cy")
    followers = plan.estimate("followers", followers_spider, None, settings)
    assert followers.requests == 3
    settings.set("TIKTOK_DAILY_REQUEST_LIMIT", 1000)
    said = plan.summary([comments, followers], settings, left_today=100)
    assert "total: 2,500 requests: 3 days at 1,000 a day" in said
    assert f"done by {clock.today() + timedelta(days=3)}, with 100 requests left today" in said
    assert "and 3 followers/following requests: 1 day at 20,000" in said
    assert json.loads(plan.as_json([comments, followers], settings))["requests"] == 2500

    unknown = plan.StageEstimate("users", note="its seed feed (videos)")
    said = plan.summary([comments, unknown], settings)
    assert "users            unknown until its seed feed (videos) is collected" in said
    assert "stages marked unknown are estimated again" in said
    assert json.loads(plan.as_json([comments, unknown], settings))["high"] is None, "no bound while a stage is unknown"
