"""The emulator's limits and faults: one switch each, all off except the real limits."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _switch(default: Any, description: str) -> Any:
    """A field with its command-line help."""
    return field(default=default, metadata={"help": description})


@dataclass
class Faults:
    """What the emulator does wrong, and how often (rates are probabilities per request).

    The real limits (token lifetime, daily request and record quotas) are on by
    default with the API's documented values; every fault is off.
    """

    token_lifetime: float = _switch(7200.0, "seconds an access token lives")
    daily_requests: int = _switch(1000, "requests per client and UTC day (failed ones count), then 429")
    daily_records: int = _switch(100_000, "records per client and UTC day, then 429")
    daily_follow_requests: int = _switch(20_000, "followers/following requests per UTC day, then 429")
    rate_limit_per_second: float = _switch(0.0, "requests per second above which 429 rate_limit_exceeded (0: none)")
    rate_limit_retry_after: int = _switch(0, "Retry-After seconds sent with a rate-limit answer (0: none)")
    retry_after_as_date: bool = _switch(False, "send that Retry-After as an HTTP date, its other form")
    oversized_answer: str = _switch(
        "",
        "the video query answers far larger than a page can be: gzip (1/4 MB inflating to 256 MB) or plain "
        "(64 MB); empty: never",
    )
    internal_error_rate: float = _switch(0.0, "share of requests answered 500 internal_error")
    outage_requests: int = _switch(0, "an outage: the first N requests to each endpoint answer 500 internal_error")
    gateway_timeout_rate: float = _switch(0.0, "share of requests answered 504 with an HTML page")
    drop_connection_rate: float = _switch(0.0, "share of connections closed without an answer")
    slow_rate: float = _switch(0.0, "share of requests answered after --slow-seconds")
    slow_seconds: float = _switch(2.0, "how slow a slow answer is")
    reject_fresh_search_id: bool = _switch(
        False, 'reject each new search id once ("Search Id N is invalid or expired")'
    )
    invalid_cursor_rate: float = _switch(0.0, 'share of later pages answered "Invalid count or cursor"')
    empty_page_rate: float = _switch(
        0.0, "share of searches holding a page of deleted videos (an empty page with has_more true)"
    )
    latency: float = _switch(0.0, "seconds added to every answer")
    playlist_500: bool = _switch(True, "the playlist endpoint answers 500 even when it succeeds (a real quirk)")
    end_date_exclusive: bool = _switch(False, "treat end_date as exclusive (the API's docs are contradictory)")
    comment_cap: int = _switch(1000, "top comments (or replies) a list serves; later cursors are refused (0: no cap)")
    strict_comment_fields: bool = _switch(
        False, "refuse display_name in the comment fields, as a server holding to the documented list would"
    )
    compliance_polls: int = _switch(2, "status polls a compliance task answers Processing before it ends")
    compliance_failed_rate: float = _switch(0.0, "share of compliance tasks that end Failed")
    compliance_download: str = _switch(
        "",
        "what the file of valid ids holds on a bad day: empty, foreign (ids never submitted too), truncated "
        "(cut in the middle of an id), half (the first half of its lines), json (the ids as a JSON answer), "
        "json-as-text (the same, sent as text/plain); empty: the true file",
    )
    hostile_values: bool = _switch(
        False, 'the first comment of each page comes with like_count "many" and create_time "yesterday"'
    )
    user_info_answer: str = _switch(
        "",
        "what user info answers on a bad day: error-200 (not found, with HTTP 200), html (a maintenance page), "
        "other-user (not found, naming another user), rate-limited (429, with --rate-limit-retry-after); "
        "empty: the true answer",
    )
    deleted_share: float = _switch(0.0, "share of videos, users and comments deleted since collection")
    search_id_ttl: float = _switch(3600.0, "seconds a search id stays valid")

    @classmethod
    def all_on(cls, **overrides: float) -> Faults:
        """Every fault switched on at once, at rates a crawl can still finish under."""
        values: dict = {
            "rate_limit_per_second": 400.0,
            "internal_error_rate": 0.08,
            "gateway_timeout_rate": 0.03,
            "drop_connection_rate": 0.03,
            "slow_rate": 0.02,
            "slow_seconds": 0.2,
            "reject_fresh_search_id": True,
            "invalid_cursor_rate": 0.04,
            "empty_page_rate": 0.3,
            "token_lifetime": 2.0,
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
