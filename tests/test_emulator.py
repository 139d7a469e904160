"""The emulator over real HTTP: every endpoint, error, limit and fault switch."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
from datetime import date

import pytest
from urllib3 import encode_multipart_formdata

from tests.conftest import REAL_RESPONSES, SMALL, call, request_log, token_for
from tiktok_spiders import api
from tiktok_spiders.emulator import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, Corpus, Emulator, Faults

VIDEO_FIELDS = ",".join(api.VIDEO_FIELDS)
BROAD_QUERY = {
    "or": [
        {
            "field_name": "hashtag_name",
            "operation": "IN",
            "field_values": ["climate", "vote", "fyp", "cats", "news", "music"],
        }
    ]
}
QUERY_BODY = {"query": BROAD_QUERY, "start_date": "20240101", "end_date": "20240130", "max_count": 100}


def page_through(emulator: Emulator, token: str, body: dict, fields: str = "id") -> tuple[list[dict], list[dict]]:
    """Every page of a video search: ``(videos, page data)``."""
    videos, pages = [], []
    body = dict(body)
    while True:
        status, payload, _ = call(emulator, api.VIDEO_QUERY_PATH, body, token=token, fields=fields)
        assert status == 200, payload
        data = payload["data"]
        pages.append(data)
        videos.extend(data["videos"])
        if not data["has_more"]:
            return videos, pages
        body.update(cursor=data["cursor"], search_id=data["search_id"])


# -- token --------------------------------------------------------------------------


def test_token_has_the_documented_shape(emulator: Emulator) -> None:
    form = f"client_key={DEMO_CLIENT_KEY}&client_secret={DEMO_CLIENT_SECRET}&grant_type=client_credentials"
    status, payload, _ = call(emulator, api.TOKEN_PATH, form=form.encode())
    assert status == 200
    assert set(payload) == {"access_token", "expires_in", "token_type"}
    assert payload["access_token"].startswith("clt.")
    assert payload["expires_in"] == 7200 and payload["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (f"client_key={DEMO_CLIENT_KEY}&client_secret=wrong&grant_type=client_credentials", 401, "invalid_client"),
        (f"client_key={DEMO_CLIENT_KEY}&grant_type=client_credentials", 400, "invalid_request"),
        (
            f"client_key={DEMO_CLIENT_KEY}&client_secret={DEMO_CLIENT_SECRET}&grant_type=password",
            400,
            "unsupported_grant_type",
        ),
    ],
)
def test_token_errors_are_flat_oauth_errors(emulator: Emulator, form: str, status: int, error: str) -> None:
    got, payload, _ = call(emulator, api.TOKEN_PATH, form=form.encode())
    assert got == status
    assert payload["error"] == error and payload["error_description"] and len(payload["log_id"]) == 34
    assert "data" not in payload


def test_research_endpoints_refuse_a_missing_or_unknown_token(emulator: Emulator) -> None:
    for token in (None, "clt.not-a-token"):
        status, payload, _ = call(emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")
        assert status == 401
        assert payload["error"]["code"] == "access_token_invalid"
        assert payload["data"] == {}


# -- video query ----------------------------------------------------------------------


def test_video_pages_have_the_real_responses_shape(emulator: Emulator) -> None:
    real = json.loads((REAL_RESPONSES / "api_videos_response_page_1_of_2.json").read_text())
    fields = ",".join(real["data"]["videos"][0])  # the fields the real page was asked for
    status, payload, headers = call(
        emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token_for(emulator), fields=fields
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert set(payload) == set(real) == {"data", "error"}
    assert set(payload["data"]) == set(real["data"])
    assert payload["error"]["code"] == "ok" and payload["error"]["message"] == ""
    assert len(payload["error"]["log_id"]) == len(real["error"]["log_id"])
    assert isinstance(payload["data"]["search_id"], str) and payload["data"]["search_id"].isdigit()
    real_video = real["data"]["videos"][0]
    for video in payload["data"]["videos"]:
        assert set(video) <= set(real_video)
        for key, value in video.items():
            assert type(value) is type(real_video[key]), key
        assert video["id"] >> 32 <= video["create_time"] <= (video["id"] >> 32) + 80
    ids = [video["id"] for video in payload["data"]["videos"]]
    assert ids == sorted(ids, reverse=True)
    assert len({tuple(video) for video in payload["data"]["videos"]}) > 1, "key order should vary"


def test_pagination_serves_exactly_the_ground_truth(emulator: Emulator) -> None:
    videos, pages = page_through(emulator, token_for(emulator), QUERY_BODY)
    expected = emulator.corpus.expected_videos(BROAD_QUERY, date(2024, 1, 1), date(2024, 1, 30))
    assert sorted(video["id"] for video in videos) == sorted(video["id"] for video in expected)
    assert len(pages) > 1
    # the cursor counts deleted videos too, so some pages are short
    assert any(len(page["videos"]) < 100 and page["has_more"] for page in pages)
    assert all(page["cursor"] % 100 == 0 for page in pages[:-1])


def test_all_video_fields_are_served_sparse(emulator: Emulator) -> None:
    videos, _ = page_through(emulator, token_for(emulator), QUERY_BODY, fields=VIDEO_FIELDS)
    seen = set().union(*(video.keys() for video in videos))
    assert {"hashtag_info_list", "video_label", "video_duration", "is_stem_verified", "favorites_count"} <= seen
    assert any("voice_to_text" not in video for video in videos)
    label = next(video["video_label"] for video in videos)
    assert set(label) == {"content", "sink", "type", "vote", "warn"}
    info = next(video["hashtag_info_list"] for video in videos if video.get("hashtag_info_list"))
    assert set(info[0]) == {"hashtag_id", "hashtag_name", "hashtag_description"}


def test_usernames_sometimes_carry_nul_bytes_like_real_data() -> None:
    corpus = Corpus(SMALL)
    padded = [video["username"] for video in corpus.videos if "\x00" in video["username"]]
    assert padded
    assert all(name.replace("\x00", "") in corpus.users for name in padded)


def test_a_copy_serves_the_same_content_and_deletes_on_its_own() -> None:
    original = Corpus(SMALL)
    original.delete(users=[next(iter(original.users))])
    twin = original.copy()
    assert twin.deleted_users == original.deleted_users and twin.hidden == original.hidden
    video = next(v for v in original.videos if v["comment_count"] > 20 and original.video_valid(v["id"]))
    comments = original.expected_comments([video["id"]])
    assert twin.expected_comments([video["id"]]) == comments, "the same comments, made again"
    author = original.real_username(video)
    twin.delete(comments=[comments[0]["id"]], users=[author])
    assert not twin.video_valid(video["id"]) and not twin.comment_valid(comments[0]["id"])
    assert original.video_valid(video["id"]) and original.comment_valid(comments[0]["id"])
    assert original.unavailable_reason(author) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"end_date": "20240301"}, "no more than 30 days"),
        ({"end_date": "2024-01-30"}, "YYYYMMDD"),
        ({"max_count": 101}, "Invalid count or cursor"),
        ({"query": {}}, "at least one non-empty"),
        ({"query": {"and": [{"field_name": "hashtag", "operation": "IN", "field_values": ["x"]}]}}, "field_name"),
        ({"query": {"and": [{"field_name": "hashtag_name", "operation": "LIKE", "field_values": ["x"]}]}}, "operation"),
        (
            {"query": {"and": [{"field_name": "region_code", "operation": "EQ", "field_values": ["US", "GB"]}]}},
            "must have one field value",
        ),
        ({"query": {"and": [{"field_name": "region_code", "operation": "IN", "field_values": ["UK"]}]}}, "region code"),
        ({"search_id": "123"}, "Search Id 123 is invalid or expired"),
    ],
)
def test_invalid_video_queries_are_invalid_params(emulator: Emulator, change: dict, message: str) -> None:
    status, payload, _ = call(
        emulator, api.VIDEO_QUERY_PATH, {**QUERY_BODY, **change}, token=token_for(emulator), fields="id"
    )
    assert status == 400
    assert payload["error"]["code"] == "invalid_params"
    assert message in payload["error"]["message"]


def test_unknown_fields_are_rejected_including_the_british_spelling(emulator: Emulator) -> None:
    for fields in ("id,favourites_count", "id,nonsense", None):
        status, payload, _ = call(emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token_for(emulator), fields=fields)
        assert status == 400 and payload["error"]["code"] == "invalid_params"
    status, _, _ = call(
        emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token_for(emulator), fields="%20id,%20create_time%20"
    )
    assert status == 200


def test_canadian_videos_are_served_like_any_other(emulator: Emulator) -> None:
    """The 2026 codebook no longer excludes Canada (2026 reference, section 4.6): nothing filters CA."""
    canadian = {"and": [{"field_name": "region_code", "operation": "IN", "field_values": ["CA"]}]}
    videos, _ = page_through(emulator, token_for(emulator), {**QUERY_BODY, "query": canadian}, "id,region_code")
    expected = emulator.corpus.expected_videos(canadian, date(2024, 1, 1), date(2024, 1, 30))
    assert videos and sorted(v["id"] for v in videos) == sorted(v["id"] for v in expected)
    assert {video["region_code"] for video in videos} == {"CA"}


def test_liked_videos_serve_favourites_under_the_spelling_asked(emulator: Emulator) -> None:
    token = token_for(emulator)
    corpus = emulator.corpus
    username = next(name for name in corpus.users if corpus.expected_user_lists("liked", [name])[0].get(name))
    for spelling in ("favorites_count", "favourites_count"):
        status, payload, _ = call(
            emulator, api.LIKED_VIDEOS_PATH, {"username": username}, token=token, fields=f"id,{spelling}"
        )
        assert status == 200
        assert all(set(video) == {"id", spelling} for video in payload["data"]["user_liked_videos"])


def test_query_operations_filter_as_documented(emulator: Emulator) -> None:
    token = token_for(emulator)
    body = {
        **QUERY_BODY,
        "query": {
            "or": [{"field_name": "keyword", "operation": "IN", "field_values": ["storm", "rain"]}],
            "not": [{"field_name": "video_length", "operation": "EQ", "field_values": ["SHORT"]}],
            "and": [
                {"field_name": "view_count", "operation": "GTE", "field_values": ["3"]},
                {"field_name": "create_date", "operation": "LT", "field_values": ["20240115"]},
            ],
        },
    }
    videos, _ = page_through(emulator, token, body, fields="id,video_description,video_duration,view_count,create_time")
    assert videos
    for video in videos:
        text = video["video_description"].lower()
        assert "storm" in text or "rain" in text
        assert video["video_duration"] >= 15
        assert video.get("view_count", 0) >= 3
        assert video["create_time"] < 1705276800  # 2024-01-15
    expected = emulator.corpus.expected_videos(body["query"], date(2024, 1, 1), date(2024, 1, 30))
    assert sorted(v["id"] for v in videos) == sorted(v["id"] for v in expected)


def test_is_random_returns_one_unpaginated_sample(emulator: Emulator) -> None:
    status, payload, _ = call(
        emulator, api.VIDEO_QUERY_PATH, {**QUERY_BODY, "is_random": True}, token=token_for(emulator), fields="id"
    )
    assert status == 200
    assert 1 <= len(payload["data"]["videos"]) <= 100 and payload["data"]["has_more"] is False


def test_null_optional_keys_and_any_content_type_are_accepted(emulator: Emulator) -> None:
    body = {**QUERY_BODY, "cursor": None, "search_id": None, "is_random": False}
    status, payload, _ = call(emulator, api.VIDEO_QUERY_PATH, body, token=token_for(emulator), fields="id")
    assert status == 200 and payload["data"]["videos"]


# -- comments ------------------------------------------------------------------------------


def comment_pages(emulator: Emulator, token: str, video_id: int) -> list[dict]:
    comments, cursor = [], 0
    while True:
        body = {"video_id": video_id, "max_count": 100, "cursor": cursor}
        status, payload, _ = call(
            emulator, api.COMMENT_LIST_PATH, body, token=token, fields=",".join(api.COMMENT_FIELDS)
        )
        assert status == 200, payload
        comments.extend(payload["data"]["comments"])
        cursor = payload["data"]["cursor"]
        if not payload["data"]["has_more"]:
            return comments


def test_comments_have_the_real_shape_and_the_1000_cap(emulator: Emulator) -> None:
    real = json.loads((REAL_RESPONSES / "api_comments_response.json").read_text())
    corpus = emulator.corpus
    big = next(video for video in corpus.videos if video["comment_count"] > 1000)
    comments = comment_pages(emulator, token_for(emulator), big["id"])
    assert 900 < len(comments) <= 1000
    assert comments == corpus.expected_comments([big["id"]])
    likes = [comment["like_count"] for comment in comments]
    assert likes == sorted(likes, reverse=True)
    assert any(comment["parent_comment_id"] != big["id"] for comment in comments), "replies are mixed in"
    real_keys = set(real["data"]["comments"][0])
    # display_name is served unasked (changelog 2025-04-17 and 2026-05-21), as in the reply example
    assert {key for comment in comments for key in comment} == real_keys | {"reply_count", "display_name"}
    status, payload, _ = call(
        emulator, api.COMMENT_LIST_PATH, {"video_id": big["id"], "cursor": 1000}, token=token_for(emulator), fields="id"
    )
    assert status == 400 and payload["error"]["message"] == "Invalid count or cursor"


def test_replies_are_served_as_documented(emulator: Emulator) -> None:
    """A comment's replies page like comments, without ``video_id``, with the fields of the
    documentation's example whatever was asked; an emulator that never listed the video
    finds the comment too (its id says where to look)."""
    token = token_for(emulator)
    corpus = emulator.corpus
    videos = [video["id"] for video in corpus.videos if 200 < video["comment_count"] <= 1000][:20]
    comments = corpus.expected_comments(videos)
    parent = max((c for c in comments if c["parent_comment_id"] == c["video_id"]), key=lambda c: c["reply_count"])
    video = corpus.video_by_id[parent["video_id"]]
    assert parent["reply_count"] > 2
    with Emulator(corpus.config) as other:  # a fresh process-like server: no memory of the video
        replies, cursor = [], 0
        while True:
            status, payload, _ = call(
                other,
                api.COMMENT_LIST_PATH,
                {"comment_id": parent["id"], "max_count": 2, "cursor": cursor},
                token=token_for(other),
                fields="id,text",
            )
            assert status == 200, payload
            replies.extend(payload["data"]["comments"])
            cursor = payload["data"]["cursor"]
            if not payload["data"]["has_more"]:
                break
    truth = corpus.expected_replies([parent["id"]])
    assert replies == [{key: value for key, value in reply.items() if key != "like_count"} for reply in truth]
    assert len(replies) >= parent["reply_count"] - 1  # a hidden reply is counted, not served
    assert all(reply["parent_comment_id"] == parent["id"] and "video_id" not in reply for reply in replies)
    assert {key for reply in replies for key in reply} == {
        "id", "text", "parent_comment_id", "reply_count", "create_time", "display_name",
    }  # fmt: skip
    for both_or_neither in ({"comment_id": parent["id"], "video_id": video["id"]}, {"max_count": 10}):
        status, payload, _ = call(emulator, api.COMMENT_LIST_PATH, both_or_neither, token=token, fields="id")
        assert status == 400 and payload["error"]["code"] == "invalid_params"
    status, payload, _ = call(emulator, api.COMMENT_LIST_PATH, {"comment_id": 12345}, token=token, fields="id")
    assert status == 200 and payload["data"]["comments"] == [] and payload["data"]["has_more"] is False


def test_display_name_in_fields_is_refused_by_a_strict_server(fresh_emulator: Emulator) -> None:
    token = token_for(fresh_emulator)
    video = next(video for video in fresh_emulator.corpus.videos if video["comment_count"])
    body = {"video_id": video["id"]}
    assert call(fresh_emulator, api.COMMENT_LIST_PATH, body, token=token, fields="id,display_name")[0] == 200
    fresh_emulator.faults.strict_comment_fields = True
    status, payload, _ = call(fresh_emulator, api.COMMENT_LIST_PATH, body, token=token, fields="id,display_name")
    assert status == 400 and payload["error"]["message"] == "Invalid fields: display_name"


# -- users and their lists --------------------------------------------------------------------


def test_user_info_available_not_found_and_refused(emulator: Emulator) -> None:
    token = token_for(emulator)
    corpus = emulator.corpus
    available = next(name for name in corpus.users if corpus.unavailable_reason(name) is None)
    private = next(name for name, status in corpus.user_status.items() if status == "private")
    status, payload, _ = call(
        emulator, api.USER_INFO_PATH, {"username": available}, token=token, fields=",".join(api.USER_FIELDS)
    )
    assert status == 200 and "username" not in payload["data"]
    assert payload["data"] == corpus.expected_users([available])[0][available]
    status, payload, _ = call(
        emulator, api.USER_INFO_PATH, {"username": "nobody_at_all"}, token=token, fields="display_name"
    )
    assert status == 400 and api.user_unavailable_reason(payload["error"]["message"]) == "not_found"
    status, payload, _ = call(emulator, api.USER_INFO_PATH, {"username": private}, token=token, fields="display_name")
    assert status == 400 and api.user_unavailable_reason(payload["error"]["message"]) == "refused"


def follow_pages(
    emulator: Emulator, token: str, path: str, key: str, username: str, fields: str | None = None
) -> list[dict]:
    entries, body = [], {"username": username, "max_count": 37}
    while True:
        status, payload, _ = call(emulator, path, body, token=token, fields=fields)
        assert status == 200, payload
        entries.extend(payload["data"][key])
        if not payload["data"]["has_more"]:
            return entries
        body["cursor"] = payload["data"]["cursor"]


@pytest.mark.parametrize(
    ("path", "key", "kind", "fields"),
    [
        (api.FOLLOWERS_PATH, "user_followers", "followers", None),
        (api.FOLLOWING_PATH, "user_following", "following", None),
        (api.LIKED_VIDEOS_PATH, "user_liked_videos", "liked", "id,create_time"),
        (api.REPOSTED_VIDEOS_PATH, "reposted_videos", "reposted", "id,create_time"),
    ],
)
def test_user_lists_paginate_completely(emulator: Emulator, path: str, key: str, kind: str, fields: str | None) -> None:
    corpus = emulator.corpus
    username = next(
        name
        for name in corpus.users
        if corpus.unavailable_reason(name) is None
        and corpus.list_is_public(kind, name)
        and len(corpus.user_list(kind, name)) > 40
    )
    entries = follow_pages(emulator, token_for(emulator), path, key, username, fields)
    expected = corpus.user_list(kind, username)
    identity = "username" if kind in ("followers", "following") else "id"
    assert [entry[identity] for entry in entries] == [entry[identity] for entry in expected]
    if identity == "username":
        assert all(set(entry) == {"username", "display_name"} for entry in entries)


def test_private_lists_are_refused(emulator: Emulator) -> None:
    corpus = emulator.corpus
    username = next(
        name
        for name in corpus.users
        if corpus.unavailable_reason(name) is None and not corpus.list_is_public("liked", name)
    )
    status, payload, _ = call(
        emulator, api.LIKED_VIDEOS_PATH, {"username": username}, token=token_for(emulator), fields="id"
    )
    assert status == 400 and api.user_unavailable_reason(payload["error"]["message"]) == "refused"


def test_pinned_videos(emulator: Emulator) -> None:
    corpus = emulator.corpus
    username = next(name for name in corpus.users if corpus.unavailable_reason(name) is None and corpus.pinned(name))
    status, payload, _ = call(
        emulator, api.PINNED_VIDEOS_PATH, {"username": username}, token=token_for(emulator), fields="id,create_time"
    )
    assert status == 200
    assert [video["id"] for video in payload["data"]["pinned_videos_list"]] == [
        v["id"] for v in corpus.pinned(username)
    ]


def test_playlist_answers_500_with_data(emulator: Emulator) -> None:
    playlist_id, video_ids = max(emulator.corpus.playlists.items(), key=lambda item: len(item[1]))
    status, payload, _ = call(
        emulator, api.PLAYLIST_INFO_PATH, {"playlist_id": playlist_id, "max_count": 2}, token=token_for(emulator)
    )
    assert status == 500
    data = payload["data"]
    assert data["playlist_id"] == playlist_id and data["playlist_video_ids"] == video_ids[:2]
    assert data["playlist_item_total"] == len(video_ids)
    status, payload, _ = call(emulator, api.PLAYLIST_INFO_PATH, {"playlist_id": 1}, token=token_for(emulator))
    assert status == 400


# -- limits and faults -------------------------------------------------------------------------


def test_daily_quota_counts_failed_requests_then_answers_429(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.daily_requests = 3
    token = token_for(fresh_emulator)
    statuses = [
        call(fresh_emulator, api.VIDEO_QUERY_PATH, {**QUERY_BODY, "max_count": 0}, token=token, fields="id")[0]
        for _ in range(3)
    ]
    assert statuses == [400, 400, 400]
    status, payload, _ = call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")
    assert status == 429 and payload["error"]["code"] == "daily_quota_limit_exceeded"
    fresh_emulator.advance_days(1)
    assert (
        call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token_for(fresh_emulator), fields="id")[0] == 200
    )


def test_daily_record_quota(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.daily_records = 50
    token = token_for(fresh_emulator)
    assert call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")[0] == 200
    status, payload, _ = call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")
    assert status == 429 and payload["error"]["code"] == "daily_quota_limit_exceeded"


def test_short_lived_tokens_expire(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.token_lifetime = 0.3
    token = token_for(fresh_emulator)
    assert call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")[0] == 200
    fresh_emulator.advance(0.2)
    assert call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")[0] == 200, "not yet"
    fresh_emulator.advance(0.2)
    status, payload, _ = call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")
    assert status == 401 and payload["error"]["code"] == "access_token_invalid"
    fresh_emulator.revoke_tokens()


def test_rate_limit(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.rate_limit_per_second = 3
    fresh_emulator.faults.rate_limit_retry_after = 2
    token = token_for(fresh_emulator)
    answers = [
        call(fresh_emulator, api.USER_INFO_PATH, {"username": "x"}, token=token, fields="display_name")
        for _ in range(5)
    ]
    limited = [(payload, headers) for status, payload, headers in answers if status == 429]
    assert limited and all(p["error"]["code"] == "rate_limit_exceeded" for p, _ in limited)
    assert limited[0][1]["Retry-After"] == "2"


@pytest.mark.parametrize(
    ("switch", "status", "code"),
    [("internal_error_rate", 500, "internal_error"), ("gateway_timeout_rate", 504, None)],
)
def test_error_faults(fresh_emulator: Emulator, switch: str, status: int, code: str | None) -> None:
    setattr(fresh_emulator.faults, switch, 1.0)
    got, payload, headers = call(
        fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token_for(fresh_emulator), fields="id"
    )
    assert got == status
    if code:
        assert payload["error"]["code"] == code
    else:
        assert headers["Content-Type"].startswith("text/html") and "504 Gateway Time-out" in payload


def test_dropped_connections(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.drop_connection_rate = 1.0
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token_for(fresh_emulator), fields="id")
    assert request_log(fresh_emulator)[-1]["status"] == 0


def test_slow_answers_and_latency(fresh_emulator: Emulator) -> None:
    token = token_for(fresh_emulator)
    fresh_emulator.faults.slow_rate, fresh_emulator.faults.slow_seconds = 1.0, 0.3
    fresh_emulator.faults.latency = 0.1
    started = time.monotonic()
    assert call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")[0] == 200
    assert time.monotonic() - started >= 0.4


def test_fresh_search_ids_are_rejected_once(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.reject_fresh_search_id = True
    token = token_for(fresh_emulator)
    _, first, _ = call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")
    follow = {**QUERY_BODY, "cursor": first["data"]["cursor"], "search_id": first["data"]["search_id"]}
    status, payload, _ = call(fresh_emulator, api.VIDEO_QUERY_PATH, follow, token=token, fields="id")
    assert status == 400 and api.SEARCH_ID_INVALID.search(payload["error"]["message"])
    assert call(fresh_emulator, api.VIDEO_QUERY_PATH, follow, token=token, fields="id")[0] == 200


def test_invalid_cursor_fault(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.invalid_cursor_rate = 1.0
    token = token_for(fresh_emulator)
    _, first, _ = call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")
    follow = {**QUERY_BODY, "cursor": first["data"]["cursor"], "search_id": first["data"]["search_id"]}
    status, payload, _ = call(fresh_emulator, api.VIDEO_QUERY_PATH, follow, token=token, fields="id")
    assert status == 400 and payload == {
        "data": {},
        "error": {**payload["error"], "code": "invalid_params", "message": "Invalid count or cursor"},
    }


def test_empty_pages_with_has_more_lose_nothing(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.empty_page_rate = 1.0
    videos, pages = page_through(fresh_emulator, token_for(fresh_emulator), QUERY_BODY)
    assert any(not page["videos"] and page["has_more"] for page in pages)
    expected = fresh_emulator.corpus.expected_videos(BROAD_QUERY, date(2024, 1, 1), date(2024, 1, 30))
    assert sorted(v["id"] for v in videos) == sorted(v["id"] for v in expected)


def test_end_date_can_be_exclusive(fresh_emulator: Emulator) -> None:
    token = token_for(fresh_emulator)
    one_day = {**QUERY_BODY, "start_date": "20240110", "end_date": "20240110"}
    inclusive, _ = page_through(fresh_emulator, token, one_day)
    fresh_emulator.faults.end_date_exclusive = True
    exclusive, _ = page_through(fresh_emulator, token, one_day)
    assert inclusive and not exclusive


def test_request_log_never_holds_secrets(fresh_emulator: Emulator) -> None:
    token = token_for(fresh_emulator)
    call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")
    text = fresh_emulator.request_log_path.read_text()
    entries = request_log(fresh_emulator)
    assert [entry["path"] for entry in entries] == [api.TOKEN_PATH, api.VIDEO_QUERY_PATH]
    assert entries[1]["body"] == QUERY_BODY and entries[1]["status"] == 200 and entries[1]["fields"] == "id"
    assert DEMO_CLIENT_SECRET not in text and token not in text


def test_command_line_prints_its_url_first(tmp_path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tiktok_spiders.emulator",
            "--port",
            "0",
            "--videos",
            "300",
            "--users",
            "100",
            "--internal-error-rate",
            "0.5",
            "--request-log",
            str(tmp_path / "log.jsonl"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert process.stdout.readline().strip() == f"TIKTOK_CLIENT_KEY={DEMO_CLIENT_KEY}"
        emulator_view = Emulator.__new__(Emulator)
        emulator_view.host, emulator_view.port = "127.0.0.1", int(url.rsplit(":", 1)[1])
        assert token_for(emulator_view).startswith("clt.")
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()


def test_corpus_is_deterministic_across_processes() -> None:
    code = (
        "from tiktok_spiders.emulator.corpus import *; from datetime import date; "
        "c = Corpus(CorpusConfig(seed=7, videos=6000, users=1200, start_date=date(2024,1,1), days=120)); "
        "v = c.videos[1234]['id']; print(v, len(c.comments(v)), c.user_list('followers', next(iter(c.users)))[:1])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_follow_lists_have_a_quota_of_their_own(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.daily_requests = 1
    fresh_emulator.faults.daily_follow_requests = 2
    token = token_for(fresh_emulator)
    username = next(
        name for name in fresh_emulator.corpus.users if fresh_emulator.corpus.unavailable_reason(name) is None
    )
    follow = [call(fresh_emulator, api.FOLLOWERS_PATH, {"username": username}, token=token)[0] for _ in range(3)]
    assert follow == [200, 200, 429]
    assert (
        call(fresh_emulator, api.USER_INFO_PATH, {"username": username}, token=token, fields="display_name")[0] == 200
    )
    assert (
        call(fresh_emulator, api.USER_INFO_PATH, {"username": username}, token=token, fields="display_name")[0] == 429
    )


def test_search_ids_expire(fresh_emulator: Emulator) -> None:
    fresh_emulator.faults.search_id_ttl = 0.2
    token = token_for(fresh_emulator)
    _, first, _ = call(fresh_emulator, api.VIDEO_QUERY_PATH, QUERY_BODY, token=token, fields="id")
    follow = {**QUERY_BODY, "cursor": first["data"]["cursor"], "search_id": first["data"]["search_id"]}
    assert call(fresh_emulator, api.VIDEO_QUERY_PATH, follow, token=token, fields="id")[0] == 200, "not yet"
    fresh_emulator.advance(0.3)
    status, payload, _ = call(fresh_emulator, api.VIDEO_QUERY_PATH, follow, token=token, fields="id")
    assert status == 400 and api.SEARCH_ID_INVALID.search(payload["error"]["message"])


# -- deletion and the Batch Compliance API ------------------------------------------------


def create_task(emulator: Emulator, token: str, ids: list, category: str = "video") -> tuple[int, dict]:
    body, content_type = encode_multipart_formdata(
        {"category": category, "file_data": ("ids.txt", "\n".join(map(str, ids)) + "\n", "text/plain")}
    )
    status, payload, _ = call(emulator, api.COMPLIANCE_CREATE_PATH, token=token, form=body, content_type=content_type)
    return status, payload


def test_deleted_content_is_gone_everywhere_at_once(fresh_emulator: Emulator) -> None:
    corpus = fresh_emulator.corpus
    token = token_for(fresh_emulator)
    author = next(name for name, ids in corpus.videos_by_user.items() if len(ids) > 2 and name in corpus.users)
    video = next(v for v in corpus.videos if v["comment_count"] > 50 and v["id"] not in corpus.hidden)
    parent = max(corpus.expected_comments([video["id"]]), key=lambda comment: comment["reply_count"])
    assert parent["reply_count"] and corpus.expected_replies([parent["id"]])
    corpus.delete(comments=[parent["id"]], users=[author])

    assert corpus.expected_replies([parent["id"]]) == []  # a comment takes its replies
    assert parent["id"] not in {c["id"] for c in corpus.expected_comments([video["id"]])}
    assert all(not corpus.video_valid(video_id) for video_id in corpus.videos_by_user[author])
    status, payload, _ = call(
        fresh_emulator, api.USER_INFO_PATH, {"username": author}, token=token, fields="display_name"
    )
    assert status == 400 and "cannot find" in payload["error"]["message"]
    corpus.delete(videos=[video["id"]])
    status, payload, _ = call(
        fresh_emulator, api.COMMENT_LIST_PATH, {"video_id": video["id"]}, token=token, fields="id"
    )
    assert status == 200 and payload["data"]["comments"] == []  # a video takes its comments


def test_compliance_tasks_are_served_as_documented(fresh_emulator: Emulator) -> None:
    corpus = fresh_emulator.corpus
    token = token_for(fresh_emulator)
    videos = [v["id"] for v in corpus.videos[:50] if v["id"] not in corpus.hidden]
    corpus.delete(videos=videos[:5])
    status, payload = create_task(fresh_emulator, token, videos)
    assert status == 200
    assert payload["error"] == {**payload["error"], "code": "ok", "http_status_code": 200, "message": "ok."}
    task_id = payload["data"]["task_id"]
    assert isinstance(task_id, int) and task_id > 2**63 - 1, "the docs' example task id exceeds int64"
    statuses = []
    for _ in range(fresh_emulator.faults.compliance_polls + 1):
        status, payload, _ = call(fresh_emulator, api.COMPLIANCE_STATUS_PATH, {"task_id": task_id}, token=token)
        statuses.append(payload["data"]["task_status"])
    assert statuses == ["Processing"] * fresh_emulator.faults.compliance_polls + ["Completed"]
    status, text, headers = call(fresh_emulator, api.COMPLIANCE_DOWNLOAD_PATH, {"task_id": task_id}, token=token)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert text.split() == [str(i) for i in videos[5:]], "one valid id per line; the deleted are missing"


@pytest.mark.parametrize(
    ("ids", "category", "message"),
    [
        (list(range(1, 10_002)), "video", "At most 10000 ids"),
        ([1, 2], "user", "Invalid category"),
        (["12a"], "comment", "one numeric id per line"),
    ],
)
def test_compliance_tasks_refuse_what_the_docs_exclude(emulator: Emulator, ids: list, category: str, message: str):
    status, payload = create_task(emulator, token_for(emulator), ids, category)
    assert status == 400 and payload["error"]["code"] == "invalid_params" and message in payload["error"]["message"]
    assert payload["error"]["http_status_code"] == 400


def test_compliance_needs_a_real_multipart_body_and_a_known_task(emulator: Emulator) -> None:
    token = token_for(emulator)
    # the docs' curl example: a JSON content type over a form, so no boundary
    status, payload, _ = call(
        emulator, api.COMPLIANCE_CREATE_PATH, token=token, form=b"category=video", content_type="application/json"
    )
    assert status == 400 and payload["error"]["message"] == "Need form-data in Body"
    for path in (api.COMPLIANCE_STATUS_PATH, api.COMPLIANCE_DOWNLOAD_PATH):
        status, payload, _ = call(emulator, path, {"task_id": 42}, token=token)
        assert status == 400 and "Invalid task_id" in payload["error"]["message"]
    status, payload = create_task(emulator, token, [1])
    early = call(emulator, api.COMPLIANCE_DOWNLOAD_PATH, {"task_id": payload["data"]["task_id"]}, token=token)
    assert early[0] == 400 and "not Completed" in early[1]["error"]["message"]


def test_deleted_share_forgets_a_deterministic_part_of_everything() -> None:
    kept = Corpus(SMALL)
    with Emulator(SMALL, faults=Faults(deleted_share=0.1)) as forgetful:
        corpus = forgetful.corpus
        gone_users = corpus.deleted_users
        assert 0.05 * len(corpus.users) < len(gone_users) < 0.15 * len(corpus.users)
        videos = [v["id"] for v in corpus.videos if v["id"] not in kept.hidden]
        gone = [vid for vid in videos if not corpus.video_valid(vid)]
        assert 0.1 * len(videos) < len(gone) < 0.35 * len(videos)  # its own share, and its users' videos
        video = next(v for v in corpus.videos if v["comment_count"] > 200 and corpus.video_valid(v["id"]))
        assert len(corpus.expected_comments([video["id"]])) < len(kept.expected_comments([video["id"]]))
        with Emulator(SMALL, faults=Faults(deleted_share=0.1)) as again:
            assert again.corpus.deleted_users == gone_users
