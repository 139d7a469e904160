"""Spiders whose seeds come from an earlier stage's feed (or a list argument).

Comments and replies are asked of the videos and comments a study holds, profiles
and their lists of the accounts it names: the seeds are one column of a feed
(JSON Lines or CSV), read lazily and deduplicated, the heaviest first where the
spider weighs them, and each one's progress is the ledger's like any other seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tiktok_spiders import api
from tiktok_spiders.feeds import SeedFileError, check_feed, read_values
from tiktok_spiders.items import UnavailableUser, known_fields
from tiktok_spiders.spiders.arguments import BadArgument, comma_list, parse_fields
from tiktok_spiders.spiders.base import ApiSpider, Note, ignore

if TYPE_CHECKING:
    from scrapy.http import Response


def default_feed(data_dir: str | Path, name: str) -> Path:
    """The feed an earlier stage wrote into the data directory (JSON Lines, else CSV)."""
    jsonl = Path(data_dir) / f"{name}.jsonl"
    csv = Path(data_dir) / f"{name}.csv"
    return csv if csv.is_file() and not jsonl.is_file() else jsonl


class SeedFeedSpider(ApiSpider):
    """A spider whose seeds are one column of an earlier stage's feed, or a list argument."""

    #: The feeds read by default (the first that exists), the column holding the seeds, and
    #: the argument naming another feed.
    seed_feeds: tuple[str, ...] = ("videos",)
    seed_column: str
    seed_argument: str = "videos"
    #: Whether feed rows may lack a seed (videos without a playlist) without being malformed.
    seed_optional: bool = False

    def __init__(self, *args: Any, seed_values: list[Any] | None = None, seed_path: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.seed_values = seed_values
        self.seed_path = Path(seed_path) if seed_path else None

    def validate(self, settings: Any) -> None:
        super().validate(settings)
        if self.seed_values is None:
            given = self.seed_path is not None
            if not given:
                candidates = [default_feed(settings["TIKTOK_DATA_DIR"], name) for name in self.seed_feeds]
                self.seed_path = next((path for path in candidates if path.is_file()), candidates[-1])
            assert self.seed_path is not None
            if not given and self.seed_feed_comes_later and not self.seed_path.is_file():
                return  # an earlier stage of the study writes it; checked when this stage's turn comes
            try:
                check_feed(self.seed_path, self.seed_column, self.seed_argument)
            except SeedFileError as error:
                raise BadArgument(str(error)) from None

    def convert(self, value: Any) -> Any:
        """A seed value from the feed, or None when it is unusable."""
        raise NotImplementedError

    #: Why a feed record is not a seed, e.g. ``"below_minimum"`` (None: every record is one).
    passed_over: Callable[[dict[str, Any]], str | None] | None = None
    #: How much a feed record's seed will be asked, e.g. its comment count (None: seeds go in feed order).
    seed_weight: Callable[[dict[str, Any]], float] | None = None
    #: What a seed takes along from its feed record (None: nothing); seeds then come as
    #: ``(value, what)`` pairs, also from ``seed_values``.
    seed_record_context: Callable[[dict[str, Any]], Any] | None = None

    #: A seed feed up to this size is read once more to count its seeds for the progress bar.
    COUNTED_FEED_BYTES = 50_000_000

    def seed_total(self) -> int | None:
        if self.seed_values is None and (
            self.seed_path is None or self.seed_path.stat().st_size > self.COUNTED_FEED_BYTES
        ):
            return None
        return sum(1 for _ in self.seed_stream())

    def seed_stream(self, note: Note = ignore) -> Iterable[Any]:
        """Unique seed values, streamed: in feed order, or the heaviest first (``seed_weight``);
        why a record is passed over is told to ``note`` (see :meth:`ApiSpider.seeds`)."""
        seen: set[Any] = set()
        if self.seed_values is not None:
            values: Iterable[Any] = self.seed_values
        else:
            assert self.seed_path is not None
            values = read_values(
                self.seed_path,
                self.seed_column,
                self.convert,
                note,
                self.seed_optional,
                self.passed_over,
                self.seed_weight,
                self.seed_record_context,
            )
        paired = self.seed_record_context is not None
        for value in values:
            key = value[0] if paired else value
            if key not in seen:
                seen.add(key)
                yield value


class UserSeedSpider(SeedFeedSpider):
    """A spider asking something of each user: seeds are usernames, from ``-a usernames=…``
    or the ``username`` column of a feed; a user the API will not serve is recorded in the
    spider's ``<name>_unavailable`` feed with the reason, not counted as a failure."""

    seed_noun = "user"
    seed_column = "username"

    def __init__(self, *args: Any, usernames: str | None = None, seed_path: str | None = None, **kwargs: Any) -> None:
        values = [name.lstrip("@") for name in comma_list(usernames)] if usernames is not None else None
        if usernames is not None and not values:
            raise BadArgument("usernames is empty")
        super().__init__(*args, seed_values=values, seed_path=seed_path, **kwargs)

    def convert(self, value: Any) -> str | None:
        return value.replace("\x00", "").strip() or None if isinstance(value, str) else None

    async def on_api_error(self, request: Any, response: Response, code: str, message: str) -> list[Any] | None:
        # documented as 400; any client error but the token's and the quota's is taken at its word
        refused = 400 <= response.status < 500 and response.status not in (401, 429)
        reason = api.user_unavailable_reason(message) if refused else None
        if reason is None:
            return None
        self.crawler.stats.inc_value(f"tiktok/{self.name}_unavailable/{reason}")
        seed = request.cb_kwargs["seed"]
        item = UnavailableUser(username=seed, reason=reason, message=message)
        return await self.finish_unavailable(seed, item, response)


class UserListSpider(UserSeedSpider):
    """A paginated list per user (followers, liked videos, …): every item carries ``seed_username``."""

    seed_feeds = ("users", "videos")
    seed_argument = "users"
    #: Where the list is in the response data (every known spelling).
    response_keys: ClassVar[tuple[str, ...]]
    item_class: ClassVar[type]
    #: The endpoint's documented fields (None: it takes no ``fields``).
    allowed_fields: ClassVar[tuple[str, ...] | None] = None
    paginated: ClassVar[bool] = True

    def __init__(self, *args: Any, users: str | None = None, fields: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, seed_path=users, **kwargs)
        if self.allowed_fields:
            self.fields = parse_fields(fields, self.allowed_fields, always=("id",))
        elif fields:
            raise BadArgument(f"the {self.name} endpoint takes no fields")

    def seeds(self, note: Note = ignore) -> Iterable[tuple[str, dict[str, Any]]]:
        for username in self.seed_stream(note):
            yield (
                username,
                {"username": username, "max_count": api.MAX_COUNT} if self.paginated else {"username": username},
            )

    def parse_records(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> Iterable[Any]:
        for record in api.first_list(data, self.response_keys):
            yield self.item_class(**known_fields(self.item_class, {**record, "seed_username": body["username"]}))
