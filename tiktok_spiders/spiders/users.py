"""``users``: the profile of every author in the video feed (or of ``-a usernames=…``).

A user the API will not return — not found, private, refused — is not an error:
it goes to the ``users_unavailable`` feed with its reason and is counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tiktok_spiders import api
from tiktok_spiders.items import User, known_fields
from tiktok_spiders.kinds import kinds_of
from tiktok_spiders.spiders.arguments import parse_fields
from tiktok_spiders.spiders.base import Note, ignore
from tiktok_spiders.spiders.seeded import UserSeedSpider


class UsersSpider(UserSeedSpider):
    name = "users"
    path = api.USER_INFO_PATH
    kinds = kinds_of("users")

    def __init__(self, *args: Any, videos: str | None = None, fields: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, seed_path=videos, **kwargs)
        self.fields = parse_fields(fields, api.USER_FIELDS)

    def pages_for(self, record: dict[str, Any]) -> int:
        return 1  # a profile is one request

    def seeds(self, note: Note = ignore) -> Iterable[tuple[str, dict[str, Any]]]:
        for username in self.seed_stream(note):
            yield username, {"username": username}

    def parse_records(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> Iterable[User]:
        yield User(**known_fields(User, {**data, "username": body["username"]}))
