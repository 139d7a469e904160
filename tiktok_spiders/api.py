"""The TikTok Research API's shapes, in one place.

Paths, field lists, condition vocabulary, response keys, error codes and the
quirky messages the API is known to send live here and nowhere else, so the
spiders and the emulator agree by construction; so do the helpers every layer
reads answers with (errors, ``Retry-After``, ids), the request meta keys that pass
between spiders and middlewares, and the one backoff.  Sources: ``api-reference.md`` and,
where they differ, ``api-reference-2026.md`` (its section 8 lists the corrections).
"""

from __future__ import annotations

import random
import re
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tiktok_spiders import clock

if TYPE_CHECKING:
    from scrapy.http import Response

DEFAULT_BASE_URL = "https://open.tiktokapis.com"

TOKEN_PATH = "/v2/oauth/token/"  # noqa: S105 - a path, not a secret
VIDEO_QUERY_PATH = "/v2/research/video/query/"
COMMENT_LIST_PATH = "/v2/research/video/comment/list/"
USER_INFO_PATH = "/v2/research/user/info/"
LIKED_VIDEOS_PATH = "/v2/research/user/liked_videos/"
PINNED_VIDEOS_PATH = "/v2/research/user/pinned_videos/"
REPOSTED_VIDEOS_PATH = "/v2/research/user/reposted_videos/"
FOLLOWERS_PATH = "/v2/research/user/followers/"
FOLLOWING_PATH = "/v2/research/user/following/"
PLAYLIST_INFO_PATH = "/v2/research/playlist/info/"
#: The Batch Compliance API (2025): a task of up to 10,000 video or comment ids.  Its
#: download answers a plain-text file, not the JSON envelope.
COMPLIANCE_CREATE_PATH = "/v2/research/validation_task/create/"
COMPLIANCE_STATUS_PATH = "/v2/research/validation_task_status/get/"
COMPLIANCE_DOWNLOAD_PATH = "/v2/research/validation_task/download/"
COMPLIANCE_MAX_IDS = 10_000
COMPLIANCE_CATEGORIES = ("video", "comment")
TASK_PROCESSING, TASK_COMPLETED, TASK_FAILED = "Processing", "Completed", "Failed"

#: Every video field of the current "complete list".  ``favourites_count`` (the
#: British spelling of older docs) is rejected by the API and is not here; the US
#: ``favorites_count`` is returned since 2026-05-21 (changelog).
VIDEO_FIELDS: tuple[str, ...] = (
    "id",
    "create_time",
    "username",
    "region_code",
    "video_description",
    "music_id",
    "like_count",
    "comment_count",
    "share_count",
    "view_count",
    "effect_ids",
    "hashtag_names",
    "playlist_id",
    "voice_to_text",
    "is_stem_verified",
    "favorites_count",
    "video_duration",
    "hashtag_info_list",
    "sticker_info_list",
    "effect_info_list",
    "video_mention_list",
    "video_label",
    "video_tag",
)
#: Fields of the liked / pinned / reposted video lists: their documented list, which
#: lacks effect_ids, playlist_id and voice_to_text.  Two of their pages spell
#: ``favourites_count``; ``favorites_count`` is asked everywhere and either spelling read
#: (2026 reference, section 4.2).
USER_VIDEO_FIELDS: tuple[str, ...] = tuple(
    name for name in VIDEO_FIELDS if name not in {"effect_ids", "playlist_id", "voice_to_text"}
)
#: Other spellings of a field in answers, and the name it is stored under.
FIELD_SPELLINGS = {"favourites_count": "favorites_count"}
COMMENT_FIELDS: tuple[str, ...] = (
    "id",
    "video_id",
    "text",
    "like_count",
    "reply_count",
    "parent_comment_id",
    "create_time",
)
#: Returned on comments and replies since 2025 (the commenter's profile name, not a
#: username) but not in the documented ``fields`` list, so asked only on request
#: (``TIKTOK_ASK_DISPLAY_NAME``): a server holding to the list may refuse it.
COMMENT_DISPLAY_NAME = "display_name"
USER_FIELDS: tuple[str, ...] = (
    "display_name",
    "bio_description",
    "avatar_url",
    "is_verified",
    "follower_count",
    "following_count",
    "likes_count",
    "video_count",
    "bio_url",
)

CONDITION_FIELDS = frozenset(
    {
        "create_date",
        "username",
        "region_code",
        "video_id",
        "hashtag_name",
        "keyword",
        "music_id",
        "effect_id",
        "video_length",
        "view_count",
        "comment_count",
    }
)
OPERATIONS = frozenset({"EQ", "IN", "GT", "GTE", "LT", "LTE"})
VIDEO_LENGTHS = frozenset({"SHORT", "MID", "LONG", "EXTRA_LONG"})
#: The region codes the API accepts, verbatim from its documentation (no "UK").
REGION_CODES = frozenset(
    """FR TH MM BD IT NP IQ BR US KW VN AR KZ GB UA TR ID PK NG KH PH EG QA MY ES JO MA SA TW AF EC
    MX BW JP LT TN RO LY IL DZ CG GH DE BJ SN SK BY NL LA BE DO TZ LK NI LB IE RS HU PT GP CM HN FI
    GA BN SG BO GM BG SD TT OM FO MZ ML UG RE PY GT CI SR AO AZ LR CD HR SV MV GY BH TG SL MK KE MT
    MG MR PA IS LU HT TM ZM CR NO AL ET GW AU KR UY JM DK AE MD SE MU SO CO AT GR UZ CL GE PL CA CZ
    ZA AI VE KG PE CH LV PR NZ TL BT MN FJ SZ VU BF TJ BA AM TD SI CY MW EE XK ME KY YE LS ZW MC GN
    BS PF NA VI BB BZ CW PS FM PG BI AD TV GL KM AW TC CV MO VC NE WS MP DJ RW AG GI GQ AS AX TO KN
    LC NC LI SS IR SY IM SC VG SB DM KI UM SX GD MH BQ YT ST CF BM SM PW GU HK IN CK AQ WF JE MQ CN
    GF MS GG TK FK PM NU MF ER NF VA IO SH BL CU NR TP BV EH PN TF RU""".split()  # noqa: SIM905 - as the docs print them
)

#: The largest answer each endpoint can give (bytes): a page of 100 records at their largest, with room.
#: A bigger one is refused unread (``DOWNLOAD_MAXSIZE`` per request, also after decompression): a
#: broken or hostile server cannot fill the machine's memory.  A video can carry a 4,000-character
#: description and an hour's transcript (~150 KB escaped), a comment 150 characters.
MB = 1 << 20
ANSWER_MAX_BYTES = {
    VIDEO_QUERY_PATH: 16 * MB,
    LIKED_VIDEOS_PATH: 16 * MB,
    PINNED_VIDEOS_PATH: 16 * MB,
    REPOSTED_VIDEOS_PATH: 16 * MB,
    COMMENT_LIST_PATH: 4 * MB,
    USER_INFO_PATH: 1 * MB,
    FOLLOWERS_PATH: 2 * MB,
    FOLLOWING_PATH: 2 * MB,
    PLAYLIST_INFO_PATH: 2 * MB,
    COMPLIANCE_DOWNLOAD_PATH: 2 * MB,  # 10,000 ids of 20 digits
    COMPLIANCE_CREATE_PATH: 1 * MB,
    COMPLIANCE_STATUS_PATH: 1 * MB,
    TOKEN_PATH: 1 * MB,
}

MAX_COUNT = 100
#: ``end_date`` may be at most this many days after ``start_date``.
MAX_WINDOW_DAYS = 30
#: Only the top 1,000 comments of a video are served (older docs; the note is gone from the
#: 2025-2026 docs, unconfirmed either way): the default of ``TIKTOK_COMMENT_CAP``.
COMMENT_CAP = 1000
#: The day TikTok widened the Research API's coverage to every public video, including those
#: not eligible for the For You feed (changelog 2026-02-26): counts collected before and
#: after it are not comparable.
COVERAGE_CHANGE = "2026-02-26"

# Error codes (``error.code`` of the response envelope).
OK = "ok"
ACCESS_TOKEN_INVALID = "access_token_invalid"  # noqa: S105 - an error code
INTERNAL_ERROR = "internal_error"
INVALID_PARAMS = "invalid_params"
RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
DAILY_QUOTA_EXCEEDED = "daily_quota_limit_exceeded"
INVALID_CLIENT = "invalid_client"

INVALID_CURSOR_MESSAGE = "Invalid count or cursor"
SEARCH_ID_INVALID = re.compile(r"Search Id \d+ is invalid or expired", re.IGNORECASE)
USER_NOT_FOUND = re.compile(r"cannot.find.the.user", re.IGNORECASE)
USER_REFUSED = re.compile(r"cannot return this user|is.private|information.cannot.be.returned", re.IGNORECASE)

#: Response keys of the list endpoints.  Where documentation and reality disagree
#: on the name, every known spelling is listed and the first present is read.
LIKED_VIDEOS_KEYS = ("user_liked_videos", "liked_videos")
PINNED_VIDEOS_KEYS = ("pinned_videos_list", "user_pinned_videos")
REPOSTED_VIDEOS_KEYS = ("reposted_videos", "user_reposted_videos")
FOLLOWERS_KEYS = ("user_followers",)
FOLLOWING_KEYS = ("user_following",)


def endpoint_url(base_url: str, path: str, fields: tuple[str, ...] | None = None) -> str:
    """The URL of an endpoint, with ``fields`` as the query parameter it must be."""
    url = base_url.rstrip("/") + path
    if fields:
        url += "?" + urlencode({"fields": ",".join(fields)}, safe=",")
    return url


class BadAnswer(ValueError):
    """An answer of a shape the API does not send: its page is a failure with this reason."""


def _shape(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def page_data(payload: Any) -> dict[str, Any]:
    """The ``data`` object of an answer, or :class:`BadAnswer`."""
    if not isinstance(payload, dict):
        raise BadAnswer(f"the answer is {_shape(payload)}, not a JSON object")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise BadAnswer(f"its data is {_shape(data)}, not an object")
    return data


def first_list(data: dict[str, Any], keys: tuple[str, ...]) -> list[Any]:
    """The list under the first of ``keys`` that ``data`` holds (empty when none, or null).

    Anything else there (an object, a string) is a :class:`BadAnswer`, never read as records.
    """
    for key in keys:
        value = data.get(key)
        if isinstance(value, list):
            return value
        if value is not None:
            raise BadAnswer(f"{key} is {_shape(value)}, not a list")
    return []


def has_more_of(data: dict[str, Any]) -> bool:
    """``has_more``: true or false (absent or null: false); a string ``"false"`` is a BadAnswer,
    not a reason to page on until the quota runs out."""
    value = data.get("has_more")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadAnswer(f"has_more is {value!r}, not true or false")
    return value


def cursor_of(data: dict[str, Any]) -> int | None:
    """``cursor`` as a whole number (None when absent)."""
    value = data.get("cursor")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadAnswer(f"cursor is {value!r}, not a whole number")
    return value


def answer_json(response: Any) -> Any:
    """A Scrapy response's JSON; :class:`ValueError` when it holds none (an HTML page, a binary body)."""
    from scrapy.http import TextResponse

    if not isinstance(response, TextResponse):
        raise ValueError("the answer is not text")
    return response.json()


def error_of(payload: Any) -> tuple[str, str]:
    """``(code, message)`` of a response envelope; ``("ok", "")`` when it has none."""
    if not isinstance(payload, dict):
        return ("", "")
    error = payload.get("error")
    if isinstance(error, dict):
        return (str(error.get("code") or ""), str(error.get("message") or ""))
    if isinstance(error, str):  # the OAuth endpoint's flat error shape
        return (error, str(payload.get("error_description") or ""))
    return (OK, "")


def is_retryable_bug(message: str) -> bool:
    """The API's own transient 400s: a search id or cursor it will accept later.

    Recognised by their message alone: their ``error.code`` is not documented.
    """
    return INVALID_CURSOR_MESSAGE.lower() in message.lower() or SEARCH_ID_INVALID.search(message) is not None


def rejected_fields(message: str, asked: tuple[str, ...]) -> list[str]:
    """The fields an ``invalid_params`` message says the API will not serve (none if it names none).

    The API's field lists have changed between documentation versions; an answer
    like "Invalid fields: favorites_count" names the ones to leave out.
    """
    if "field" not in message.lower():
        return []
    words = set(re.findall(r"[a-z_]+", message.lower()))
    return [name for name in asked if name in words and name != "id"]


def user_unavailable_reason(message: str) -> str | None:
    """``not_found`` / ``refused`` for the user errors the API answers with 400."""
    if USER_NOT_FOUND.search(message):
        return "not_found"
    if USER_REFUSED.search(message):
        return "refused"
    return None


# -- requests and answers: meta keys, errors, backoff -----------------------------------

#: The spider sets this on requests whose search id came from an earlier run:
#: if the API says it expired, retrying cannot help, the spider starts afresh.
RESUMED_SEARCH = "tiktok_resumed_search"
#: Set on requests to an endpoint that answers 500 *with* its data (playlists): such
#: an answer is passed on, not retried.
MAY_SUCCEED_WITH_500 = "tiktok_500_may_succeed"


def json_error(response: Response) -> tuple[str, str]:
    """``(code, message)`` of an API answer, ``("", "")`` when it is not JSON."""
    if b"json" not in (response.headers.get(b"Content-Type") or b""):
        return ("", "")
    try:
        return error_of(answer_json(response))
    except ValueError:
        return ("", "")


def retry_after(response: Response) -> float | None:
    """The seconds a ``Retry-After`` header asks us to wait, in either of its forms (seconds, or an
    HTTP date: RFC 9110): the server's word, not capped (the middlewares hold it to
    ``TIKTOK_MAX_RETRY_AFTER``).  None when there is none, or it is neither form."""
    value = (response.headers.get(b"Retry-After") or b"").decode("latin-1").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is in GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - clock.now()).total_seconds())


def backoff(attempt: int, base: float, maximum: float) -> float:
    """Seconds to wait before retry ``attempt`` (0 first): ``base * 2**attempt`` capped at
    ``maximum``, half of it fixed and half random, so that clients retrying together spread out."""
    cap = min(maximum, base * 2**attempt)
    return cap / 2 + random.uniform(0, cap / 2)  # noqa: S311 - jitter, not security


INT64_MAX = 2**63 - 1


def as_int(value: Any) -> int | None:
    """An id as an exact int64 (the API sends int64 numbers; some files hold them as text).

    None for anything else, including a number outside int64, which no table could hold.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and -INT64_MAX - 1 <= value <= INT64_MAX:
        return value
    return None
