"""Real recorded responses through the spiders' parsing and the validation pipeline."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from tests.conftest import REAL_RESPONSES
from tiktok_spiders import api
from tiktok_spiders.items import Comment, LikedVideo, Reply, UnavailableUser, User, Video, known_fields
from tiktok_spiders.pipelines.validate import ValidationPipeline
from tiktok_spiders.spiders.comments import CommentsSpider
from tiktok_spiders.spiders.replies import RepliesSpider
from tiktok_spiders.spiders.videos import VideosSpider


def real(name: str) -> dict:
    return json.loads((REAL_RESPONSES / name).read_text(encoding="utf-8"))


@pytest.fixture
def pipeline() -> ValidationPipeline:
    return build_from_crawler(ValidationPipeline, get_crawler(settings_dict={}))


def test_items_name_the_api_fields_in_the_api_order() -> None:
    # every record ends with when its page was fetched (the project's field, not the API's)
    assert tuple(field.name for field in fields(Video)) == (*api.VIDEO_FIELDS, "collected_at")
    # display_name is sent but not in the documented list (2026 reference, section 3.2)
    assert tuple(field.name for field in fields(Comment)) == (*api.COMMENT_FIELDS, "display_name", "collected_at")
    assert {field.name for field in fields(Reply)} == {field.name for field in fields(Comment)}
    assert tuple(field.name for field in fields(User)) == ("username", *api.USER_FIELDS, "collected_at")
    assert [field.name for field in fields(UnavailableUser)] == ["username", "reason", "message", "collected_at"]


def test_a_real_video_page(pipeline: ValidationPipeline) -> None:
    payload = real("api_videos_response_page_1_of_2.json")
    spider = VideosSpider(hashtags="cats", start_date="2024-01-06", end_date="2024-01-06")
    items = [pipeline.process_item(item) for item in spider.parse_records(payload["data"], {})]
    assert len(items) == 27
    first = items[0]
    assert first.id == 7320768196569599275 and first.music_id == 7159460238003800066
    assert first.hashtag_names == ["cats", "duet"] and first.effect_ids is None
    assert sum(item.like_count is None for item in items) == 1  # sparse: one video has no like_count
    assert spider.next_body(payload["data"], {"cursor": 0})["search_id"] == "7354367454467855403"


def test_nul_bytes_are_stripped_and_counted(pipeline: ValidationPipeline) -> None:
    payload = real("api_videos_response_unicode_with_null_bytes.json")
    spider = VideosSpider(hashtags="x", start_date="2024-11-09", end_date="2024-11-09")
    (item,) = [pipeline.process_item(item) for item in spider.parse_records(payload["data"], {})]
    assert item.username == "حموديالباشا4"
    assert pipeline.stats.get_value("tiktok/validation/username/nul_stripped") == 1
    assert spider.next_body(payload["data"], {}) is None  # has_more false: the window is done


def test_half_an_emoji_is_replaced_so_the_record_can_be_stored(pipeline: ValidationPipeline, tmp_path) -> None:
    from tiktok_spiders.feeds import write_feed
    from tiktok_spiders.kinds import kind_of
    from tiktok_spiders.ledger import Ledger

    text = (REAL_RESPONSES / "api_videos_response_page_1_of_2.json").read_text(encoding="utf-8")
    payload = json.loads(text.replace('"video_description":"', '"video_description":"CUT \\ud83d HERE ', 1))
    spider = VideosSpider(hashtags="cats", start_date="2024-01-06", end_date="2024-01-06")
    items = [pipeline.process_item(item) for item in spider.parse_records(payload["data"], {})]
    assert pipeline.stats.get_value("tiktok/validation/video_description/surrogate_replaced") == 1
    (cut,) = [item for item in items if "CUT" in (item.video_description or "")]
    assert cut.video_description.startswith("CUT \ufffd HERE ")

    kind = kind_of(cut, "videos")
    ledger = Ledger(tmp_path)
    for item in items:
        assert ledger.add_record(kind.feed, kind.key(vars(item)), vars(item))
    assert write_feed(ledger, kind, tmp_path / "videos.jsonl", "jsonl").records == 27
    assert write_feed(ledger, kind, tmp_path / "videos.csv", "csv").records == 27
    assert "CUT \ufffd HERE" in (tmp_path / "videos.csv").read_text(encoding="utf-8")


def test_a_real_comment_page(pipeline: ValidationPipeline) -> None:
    payload = real("api_comments_response.json")
    spider = CommentsSpider(video_ids="7385291383449439519")
    items = [
        pipeline.process_item(item) for item in spider.parse_records(payload["data"], {"video_id": 7385291383449439519})
    ]
    assert len(items) == 6
    assert [item.text for item in items][:3] == ["", "", ""]  # empty text is a real value, kept
    assert all(item.video_id == 7385291383449439519 == item.parent_comment_id for item in items)
    assert spider.next_body(payload["data"], {"video_id": 1, "cursor": 0}) is None


def test_the_documented_reply_page_keeps_every_value_and_takes_its_video_from_the_parent(
    pipeline: ValidationPipeline,
) -> None:
    """The documentation's reply example (2026 reference, section 3.1): no video_id, no
    like_count, a display_name that was not asked for."""
    payload = json.loads(
        '{"data":{"has_more":false,"comments":[{"parent_comment_id":1234567876543,"reply_count":0,'
        '"text":"Lalalaa","create_time":1740510402,"display_name":"test","id":12345678909876}],"cursor":1},'
        '"error":{"code":"ok","message":"ok","log_id":"20123456789876543"}}'
    )
    spider = RepliesSpider(comment_ids="1234567876543")
    body = {"comment_id": 1234567876543, "max_count": 100, "cursor": 0}
    (reply,) = [pipeline.process_item(item) for item in spider.parse_records(payload["data"], body, video_id=77)]
    assert vars(reply) == {
        "id": 12345678909876,
        "video_id": 77,  # the parent's, from the comments feed
        "parent_comment_id": 1234567876543,
        "text": "Lalalaa",
        "like_count": None,  # not sent: stays missing, never 0
        "reply_count": 0,
        "create_time": 1740510402,
        "display_name": "test",
        "collected_at": None,  # set when the page is stored
    }
    without_parent = dict(payload["data"]["comments"][0], parent_comment_id=None)
    (reply,) = spider.parse_records({"comments": [without_parent]}, body, video_id=None)
    assert reply.parent_comment_id == 1234567876543 and reply.video_id is None


def test_either_spelling_of_favourites_and_either_shape_of_video_tag_are_kept() -> None:
    liked = known_fields(LikedVideo, {"id": 1, "favourites_count": 12, "video_tag": [{"type": "AIGC", "number": 2}]})
    assert liked == {"id": 1, "favorites_count": 12, "video_tag": [{"type": "AIGC", "number": 2}]}
    both = known_fields(Video, {"id": 1, "favorites_count": 3, "favourites_count": 4})
    assert both["favorites_count"] == 3  # the documented spelling wins; the other only fills a gap
    tag = {"video_tag_type": "Branded", "video_tag_number": 7}
    assert known_fields(Video, {"id": 1, "video_tag": tag})["video_tag"] == tag  # kept as sent, not renamed


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (Video(username="x"), "tiktok/validation/id/missing"),
        (Video(id="12a"), "tiktok/validation/id/not_an_integer"),
        (Comment(id=1), "tiktok/validation/video_id/missing"),
        (Reply(id=1), "tiktok/validation/parent_comment_id/missing"),
        (User(display_name="x"), "tiktok/validation/username/missing"),
        # every field of the type the API documents: what tables and report would choke on is dropped here
        (Reply(id=1, parent_comment_id=2, like_count="many"), "tiktok/validation/like_count/not_an_integer"),
        (Reply(id=1, parent_comment_id=2, create_time="yesterday"), "tiktok/validation/create_time/not_an_integer"),
        (Video(id=1, create_time=10**12), "tiktok/validation/create_time/not_a_time"),
        (Video(id=-5), "tiktok/validation/id/not_a_positive_id"),
        (Video(id=2**63), "tiktok/validation/id/not_an_integer"),
        (Comment(id=1, video_id=0), "tiktok/validation/video_id/not_a_positive_id"),
        (Video(id=1, like_count=-1), "tiktok/validation/like_count/negative"),
        (Video(id=1, view_count=1.5), "tiktok/validation/view_count/not_an_integer"),
        (Video(id=1, hashtag_names="climate"), "tiktok/validation/hashtag_names/not_list"),
        (Video(id=1, video_label=["x"]), "tiktok/validation/video_label/not_dict"),
        (Video(id=1, video_tag="AIGC"), "tiktok/validation/video_tag/not_dict_or_list"),
        (Video(id=1, is_stem_verified="true"), "tiktok/validation/is_stem_verified/not_true_or_false"),
        (Video(id=1, username=123), "tiktok/validation/username/not_str"),
        (User(username="x", is_verified=1), "tiktok/validation/is_verified/not_true_or_false"),
    ],
)
def test_invalid_records_are_dropped_and_counted(pipeline: ValidationPipeline, item, problem: str) -> None:
    with pytest.raises(DropItem):
        pipeline.process_item(item)
    assert pipeline.stats.get_value(problem) == 1


def test_string_ids_become_exact_integers(pipeline: ValidationPipeline) -> None:
    item = pipeline.process_item(Video(id="7320768196569599275", music_id=7159460238003800066, like_count="12"))
    assert ItemAdapter(item)["id"] == 7320768196569599275
    assert ItemAdapter(item)["like_count"] == 12  # digits are the number they write
    tag = [{"type": "AIGC", "number": 1}]
    assert pipeline.process_item(Video(id=1, video_tag=tag, music_id=0)).video_tag == tag


@deferred_f_from_coro_f
async def test_an_answer_that_is_not_json_fails_its_seed_with_a_reason(tmp_path) -> None:
    from scrapy.http import HtmlResponse, Request

    from tiktok_spiders.ledger import Ledger

    crawler = get_crawler(VideosSpider, settings_dict={"TIKTOK_DATA_DIR": str(tmp_path)})
    spider = VideosSpider(hashtags="cats", start_date="2024-01-06", end_date="2024-01-06")
    spider.crawler, spider.ledger = crawler, Ledger(tmp_path)
    response = HtmlResponse("https://api.test/", body=b"<html>maintenance</html>", request=Request("https://api.test/"))
    assert await spider.parse_page(response, seed="w1") == []
    assert spider.ledger.failed_seeds("videos") == [("w1", "HTTP 200 answer is not JSON")]
    spider.ledger.close()


def test_the_api_quirks_are_recognised_by_their_message_whatever_the_code() -> None:
    assert api.is_retryable_bug("Search Id 7354367454467855403 is invalid or expired")
    assert api.is_retryable_bug("Invalid count or cursor")
    assert not api.is_retryable_bug("The end_date must be no more than 30 days after the start_date")
    assert api.rejected_fields("Invalid fields: favorites_count,video_tag", api.VIDEO_FIELDS) == [
        "favorites_count",
        "video_tag",
    ]
    assert api.rejected_fields("Invalid query: username is required", api.VIDEO_FIELDS) == []
    assert api.user_unavailable_reason("User x is invalid: cannot find the user") == "not_found"
    assert api.user_unavailable_reason("API cannot return this user's information") == "refused"
    assert api.user_unavailable_reason("The user is private") == "refused"


def test_the_csv_feed_is_what_scrapys_csv_exporter_writes(pipeline: ValidationPipeline, tmp_path) -> None:
    from scrapy.exporters import CsvItemExporter

    from tiktok_spiders.feeds import write_feed
    from tiktok_spiders.kinds import kind_of
    from tiktok_spiders.ledger import Ledger

    class JsonCells(CsvItemExporter):  # the exporter we would use: lists and objects as JSON text
        def serialize_field(self, field, name, value):
            if isinstance(value, list | dict):
                return json.dumps(value, ensure_ascii=False)
            return super().serialize_field(field, name, value)

    spider = VideosSpider(hashtags="cats", start_date="2024-01-06", end_date="2024-01-06")
    pages = [real("api_videos_response_page_1_of_2.json"), real("api_videos_response_unicode_with_null_bytes.json")]
    items = [pipeline.process_item(item) for page in pages for item in spider.parse_records(page["data"], {})]
    items[0].video_description = 'quotes " and, commas\r\nand lines 🎉'
    items[1].is_stem_verified, items[2].is_stem_verified = True, False
    kind = kind_of(items[0], "videos")
    ledger = Ledger(tmp_path)
    for item in items:
        ledger.add_record(kind.feed, kind.key(vars(item)), vars(item))
    assert write_feed(ledger, kind, tmp_path / "ours.csv", "csv").records == len(items)

    with (tmp_path / "scrapys.csv").open("wb") as handle:
        exporter = JsonCells(handle, fields_to_export=[field.name for field in fields(Video)])
        exporter.start_exporting()
        for item in items:
            exporter.export_item(json.loads(json.dumps(vars(item))))  # as stored: JSON types
        exporter.finish_exporting()
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "scrapys.csv").read_bytes()


def test_compliance_answers_are_read_as_sent() -> None:
    """Undocumented details read leniently: the file's separators, the task id's JSON type."""
    from tiktok_spiders.refreshes import Task
    from tiktok_spiders.spiders.refresh import sent_back, valid_ids

    assert valid_ids(b"1\n22\r\n333\n") == {"1", "22", "333"}
    assert valid_ids(b"\xef\xbb\xbf1, 22,333") == {"1", "22", "333"}  # a BOM, commas
    assert valid_ids(b"") == set()  # nothing valid any more
    assert valid_ids(b'{"error": "x"}') is None
    task = Task(1, "video", 0, 10, json.dumps(12345678910987654321))
    assert sent_back(task) == 12345678910987654321  # beyond int64, still a number
    task.task_id = json.dumps("12345678910")
    assert sent_back(task) == "12345678910"  # a string stays a string
