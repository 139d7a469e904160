"""``users``: the profile of every author in the video feed (or of ``-a usernames=…``).

A user the API will not return — not found, private, refused — is not an error:
it goes to the ``users_unavailable`` feed with its reason and is counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tiktok_spiders import api
from tiktok_spiders.items import USERS, USERS_UNAVAILABLE, UnavailableUser, User, known_fields
from tiktok_spiders.pipelines.validate import without_nul
from tiktok_spiders.spiders.base import BadArgument, comma_list, parse_fields
from tiktok_spiders.spiders.comments import SeedFeedSpider


class UsersSpider(SeedFeedSpider):
    name = "users"
    path = api.USER_INFO_PATH
    kinds = (USERS, USERS_UNAVAILABLE)
    seed_noun = "user"
    seed_column = "username"

    def __init__(
        self, *args: Any, videos: str | None = None, usernames: str | None = None, fields: str | None = None, **kwargs: Any
    ) -> None:
        values = [name.lstrip("@") for name in comma_list(usernames)] if usernames else None
        if usernames is not None and not values:
            raise BadArgument("usernames is empty")
        super().__init__(*args, seed_values=values, seed_path=videos, **kwargs)
        self.fields = parse_fields(fields, api.USER_FIELDS)

    def convert(self, value: Any) -> str | None:
        return without_nul(value).strip() or None if isinstance(value, str) else None

    def seeds(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for username in self.seed_stream():
            yield username, {"username": username}

    def parse_records(self, data: dict[str, Any], body: dict[str, Any]) -> Iterable[User]:
        yield User(**known_fields(User, {**data, "username": body["username"]}))

    async def on_api_error(self, request: Any, response: Any, code: str, message: str) -> list[Any] | None:
        reason = api.user_unavailable_reason(message) if response.status == 400 else None
        if reason is None:
            return None
        self.crawler.stats.inc_value(f"tiktok/users_unavailable/{reason}")
        item = UnavailableUser(username=request.cb_kwargs["seed"], reason=reason, message=message)
        return await self.finish_unavailable(request.cb_kwargs["seed"], item, response)
