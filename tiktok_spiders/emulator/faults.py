"""The emulator's limits and faults: one switch each, all off except the real limits."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Faults:
    """What the emulator does wrong, and how often (rates are probabilities per request).

    The real limits (token lifetime, daily request and record quotas) are on by
    default with the API's documented values; every fault is off.
    """

    token_lifetime: float = 7200.0
    daily_requests: int = 1000
    daily_records: int = 100_000
    daily_follow_requests: int = 20_000
    #: Requests per second above which a 429 ``rate_limit_exceeded`` is answered (0: none).
    rate_limit_per_second: float = 0.0
    #: Send ``Retry-After`` (seconds) with rate-limit answers (0: do not).
    rate_limit_retry_after: int = 0
    internal_error_rate: float = 0.0
    gateway_timeout_rate: float = 0.0
    drop_connection_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 2.0
    #: Reject every freshly issued search id once ("Search Id N is invalid or expired").
    reject_fresh_search_id: bool = False
    #: "Invalid count or cursor" for a page past the first (video and comment lists).
    invalid_cursor_rate: float = 0.0
    #: Probability that a video search holds a block of deleted videos as long as a
    #: page, so that whole pages come back empty with ``has_more`` true.
    empty_page_rate: float = 0.0
    latency: float = 0.0
    #: The playlist endpoint answers 500 even when it succeeds (a real quirk).
    playlist_500: bool = True
    #: Treat ``end_date`` as exclusive (the API's documentation is contradictory).
    end_date_exclusive: bool = False
    search_id_ttl: float = 3600.0

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
