"""The item pipelines and the page commit: validation, the ledger's dedupe, Scrapy's signals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scrapy import signals
from scrapy.exceptions import DropItem
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from tests.conftest import NoServer, answer, api_request, crawler_for, settings_for
from tiktok_spiders import api
from tiktok_spiders.items import Comment, Video
from tiktok_spiders.pipelines.store import LedgerPipeline
from tiktok_spiders.pipelines.validate import ValidationPipeline
from tiktok_spiders.settings import ITEM_PIPELINES
from tiktok_spiders.spiders.pages import process_items


def test_validation_keeps_ids_exact_and_cleans_text_it_counts(tmp_path: Path) -> None:
    crawler = crawler_for(tmp_path)
    validate = build_from_crawler(ValidationPipeline, crawler)
    comment = validate.process_item(Comment(id="7300000000000000001", video_id=7, text="a\x00b \ud83d"))
    assert comment.id == 7300000000000000001 and comment.text == "ab \ufffd"
    assert crawler.stats.get_value("tiktok/validation/text/nul_stripped") == 1
    assert crawler.stats.get_value("tiktok/validation/text/surrogate_replaced") == 1
    for bad, problem in ((Comment(id=1.5, video_id=7), "id/not_an_integer"), (Comment(id=1), "video_id/missing")):
        with pytest.raises(DropItem):
            validate.process_item(bad)
        assert crawler.stats.get_value(f"tiktok/validation/{problem}") == 1
    with pytest.raises(DropItem):
        validate.process_item(Video(id=2**63))
    assert crawler.stats.get_value("tiktok/dropped") == 3


def test_the_ledger_stores_each_record_once(tmp_path: Path) -> None:
    crawler = crawler_for(tmp_path)
    store = build_from_crawler(LedgerPipeline, crawler)
    store.process_item(Video(id=1, username="a"))
    with pytest.raises(DropItem):
        store.process_item(Video(id=1, username="a, again"))
    store.ledger.finish_page("units", "seed", cursor=None, search_id=None, has_more=False)
    assert [json.loads(line)["username"] for line in store.ledger.record_lines("videos")] == ["a"]
    assert crawler.stats.get_value("tiktok/duplicates/videos") == 1
    store.ledger.close()


class BrokenPipeline:
    """A pipeline with a bug: Scrapy's item_error, then the page is not committed."""

    def process_item(self, item: Any) -> Any:
        if item.text == "boom":
            raise RuntimeError("a bug in a pipeline")
        return item


@deferred_f_from_coro_f
async def test_a_pages_items_go_through_the_pipelines_with_scrapys_signals_and_log_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tiktok_spiders.spiders.comments import CommentsSpider

    pipelines = {**ITEM_PIPELINES, "tests.unit.test_pipelines.BrokenPipeline": 50}
    crawler = get_crawler(CommentsSpider, settings_for(NoServer(), tmp_path / "data", ITEM_PIPELINES=pipelines))
    crawler.spider = spider = crawler._create_spider(video_ids="7")
    crawler.engine = crawler._create_engine()
    sent: dict[str, list[Any]] = {"scraped": [], "dropped": [], "error": []}
    receivers = [lambda item, name=name, **_: sent[name].append(item) for name in sent]  # held: weakly connected
    for name, receiver in zip(sent, receivers, strict=True):
        crawler.signals.connect(receiver, getattr(signals, f"item_{name}"))
    page = api_request(api.COMMENT_LIST_PATH)
    response = answer(page, 200)
    kept = Comment(id=1, video_id=7, text="first")
    stored = await process_items(spider, [kept, Comment(id=1, video_id=7, text="again"), Comment(id=2)], response)
    assert stored == [kept] and sent["scraped"] == [kept] and len(sent["dropped"]) == 2
    assert "Dropped a Comment: video_id is missing" in caplog.text and "again" not in caplog.text, "one line, no record"
    with pytest.raises(RuntimeError):
        await process_items(spider, [Comment(id=3, video_id=7, text="boom")], response)
    assert [item.id for item in sent["error"]] == [3]
    spider.ledger.close()
