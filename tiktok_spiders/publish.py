"""What a study's tables become when they are shared: pseudonyms, a data package, the ids alone.

- **Pseudonyms** (``tables --pseudonymize``): every username and display name — of authors,
  commenters, followers, the accounts a video mentions, the ``@handles`` in text, the
  username in a video's URL — is replaced by a keyed hash (HMAC-SHA256 with a key kept in
  the study's ledger, never written out): the same account is the same pseudonym in every
  table and every run, so tables still join, and another study's key gives other ones.
  Profile fields that identify a person (avatar, bio link, bio) and the API's messages
  (which name the account) are dropped.  What each column gets is :data:`POLICY`, which
  the codebook prints too.  The text of comments is kept: it may still identify people.
- **A Frictionless Data Package** (``datapackage.json``, Data Package v2) beside the tables,
  from the same column declaration as the codebook: each table's schema (types, ids as
  integers, descriptions), primary key and the foreign keys the data holds, and the
  study's provenance from its manifest.
- **The ids alone** (``tables --ids-only``): what another researcher needs to collect the
  same data again (``crawl comments -a videos=ids/videos.csv``), with nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiktok_spiders import clock
from tiktok_spiders.kinds import KINDS

if TYPE_CHECKING:
    import pandas as pd

    from tiktok_spiders.ledger import Ledger

#: Where ``tables`` writes in a data directory: as collected, pseudonymised, the ids alone.
TABLES_DIR, PSEUDONYMIZED_DIR, IDS_DIR = "tables", "tables-pseudonymized", "tables-ids"
TABLE_DIRS = (TABLES_DIR, PSEUDONYMIZED_DIR, IDS_DIR)
#: What is written beside the tables to say what they hold.
DESCRIPTIONS = ("codebook.md", "datapackage.json")
KEY_NAME = "pseudonym_key"

#: What a column becomes in pseudonymised tables, by its name without the tables' prefixes
#: (``author_``, ``video_``, ``parent_``): ``account`` (a username: its pseudonym), ``name`` (a
#: display name: its own), ``accounts`` (a list of either), ``mentions`` (text: its @handles
#: replaced), ``url`` (a video URL: its username replaced) or ``drop``.
POLICY = {
    "username": "account",
    "seed_username": "account",
    "display_name": "name",
    "video_mention_list": "accounts",
    "video_description": "mentions",
    "voice_to_text": "mentions",
    "text": "mentions",
    "url": "url",
    "avatar_url": "drop",
    "bio_url": "drop",
    "bio_description": "drop",
    "message": "drop",
}
WORDS = {
    "account": "replaced by its pseudonym (the same in every table)",
    "name": "replaced by a pseudonym of the name",
    "accounts": "each replaced by its pseudonym",
    "mentions": "@handles in it replaced by their pseudonyms; the rest kept as sent",
    "url": "the username in it replaced by its pseudonym (not a working link)",
    "drop": "left out: it identifies a person",
}
#: An @handle in text: letters (of any script), digits, underscores and dots, as usernames are,
#: never ending in a dot (the end of a sentence).
HANDLE = re.compile(r"(?<![\w.@])@([\w.]{0,29}\w)")
URL = re.compile(r"(https://www\.tiktok\.com/@)([^/]+)(/video/\d+)")


def policy(column: str) -> str | None:
    """What pseudonymisation does to ``column`` (None: kept as it is)."""
    for prefix in ("", "author_", "video_", "parent_"):
        if column.startswith(prefix) and column.removeprefix(prefix) in POLICY:
            return POLICY[column.removeprefix(prefix)]
    return None


def study_key(ledger: Ledger) -> bytes:
    """The study's own key (made the first time), kept in its ledger and nowhere else."""
    key = ledger.meta(KEY_NAME)
    if key is None:
        key = secrets.token_hex(32)
        ledger.set_meta(KEY_NAME, key)
    return bytes.fromhex(key)


class Pseudonyms:
    """Keyed pseudonyms of accounts and names, and a table's chunks with them in place."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def account(self, username: str) -> str:
        """An account's pseudonym: its username, without ``@`` and case, hashed with the key."""
        digest = hmac.new(self.key, b"account:" + username.lstrip("@").lower().encode(), hashlib.sha256)
        return "user_" + digest.hexdigest()[:16]

    def name(self, display_name: str) -> str:
        return "name_" + hmac.new(self.key, b"name:" + display_name.encode(), hashlib.sha256).hexdigest()[:16]

    def mentions(self, text: str) -> str:
        return HANDLE.sub(lambda match: "@" + self.account(match.group(1)), text)

    def query(self, query: Any) -> Any:
        """A query as sent, its ``username`` conditions' values replaced by their pseudonyms."""
        if isinstance(query, list):
            return [self.query(part) for part in query]
        if not isinstance(query, dict):
            return query
        if query.get("field_name") == "username":
            return {**query, "field_values": [self.account(str(value)) for value in query.get("field_values", [])]}
        return {name: self.query(value) for name, value in query.items()}

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A chunk of a table, pseudonymised (a :data:`staging.Selection`)."""
        frame = frame.drop(columns=[column for column in frame.columns if policy(column) == "drop"])
        how: dict[str, Callable[[Any], Any]] = {
            "account": self.account,
            "name": self.name,
            "mentions": self.mentions,
            "url": lambda url: URL.sub(lambda m: m.group(1) + self.account(m.group(2)) + m.group(3), url),
            "accounts": lambda names: [self.account(name) if isinstance(name, str) else name for name in names],
        }
        for column in frame.columns:
            rule = policy(column)
            if rule is None:
                continue
            change = how[rule]
            frame[column] = [
                change(value)
                if (isinstance(value, str) and value) or (rule == "accounts" and isinstance(value, list))
                else value
                for value in frame[column]
            ]
        return frame


#: The ids another researcher can collect a study again from (never a username: an account's name is the person's).
ID_COLUMNS = ("id", "video_id", "parent_comment_id", "playlist_id", "position", "music_id")


def ids_only(frame: pd.DataFrame) -> pd.DataFrame:
    """A table's ids and nothing else (a :data:`staging.Selection`)."""
    return frame[[column for column in frame.columns if column in ID_COLUMNS]]


def with_ids(table: str) -> bool:
    """Whether a table has ids to share (users and their lists have none but names)."""
    kind = KINDS.get(table)
    return kind is not None and any(field in ID_COLUMNS for field in kind.id_fields)


def made_as(directory: str, ledger: Ledger) -> Callable[[pd.DataFrame], pd.DataFrame] | None:
    """How the tables in one of :data:`TABLE_DIRS` are made from the feeds (a purge writes them again so)."""
    if directory == PSEUDONYMIZED_DIR:
        return Pseudonyms(study_key(ledger))
    if directory == IDS_DIR:
        return ids_only
    return None


def pseudonymized_note(directory: Path, columns: dict[str, list[str]]) -> dict[str, Any]:
    """What the manifest says of pseudonymised tables: where, when, and what each column got."""
    got: dict[str, list[str]] = {}
    for table, names in columns.items():
        for column in names:
            rule = policy(column)
            if rule is not None:
                got.setdefault(rule, []).append(f"{table}.{column}")
    return {
        "written_at": clock.stamp(),
        "directory": str(directory),
        "method": "HMAC-SHA256 with a key kept in the study's ledger: stable within the study, other in another",
        **{WORDS[rule]: sorted(found) for rule, found in got.items()},
        "not pseudonymised": "the text of comments, replies and descriptions (beyond @handles) may still "
        "identify people; ids of videos and comments are kept (they are public)",
    }


# -- the data package ------------------------------------------------------------------------------

#: Table Schema types of the tables' columns, by their type (``tables.column_type``).
TYPES = {"int": "integer", "time": "datetime", "bool": "boolean", None: "string"}
#: Foreign keys a study's tables may hold: (table, its fields, the table referred to, its fields).
FOREIGN_KEYS = (
    ("comments", ["video_id"], "videos", ["id"]),
    ("replies", ["parent_comment_id"], "comments", ["id"]),
    ("replies", ["video_id"], "videos", ["id"]),
    ("videos", ["username"], "users", ["username"]),
    ("playlist_videos", ["playlist_id"], "playlists", ["playlist_id"]),
)


def field_schema(table: str, column: str, values_kind: str | None) -> dict[str, Any]:
    """A column's Table Schema field: its type from the declaration, its meaning from the codebook."""
    from tiktok_spiders import codebook, tables

    kind = tables.column_type(column)
    field: dict[str, Any] = {"name": column}
    if kind == "json":
        field["type"] = values_kind or "any"
    else:
        field["type"] = TYPES[kind]
    if kind == "time":
        field["format"] = "any"  # ISO 8601 as the tables write it: 2024-01-06 12:39:56+00:00
    description = codebook.describe(table, column)
    if description:
        field["description"] = description
    return field


def json_kind(column: str) -> str | None:
    """``array`` or ``object`` for a JSON column, from its items' annotation (None: either)."""
    from dataclasses import fields

    for kind in KINDS.values():
        for field in fields(kind.item_class):
            if field.name == column.removeprefix("author_"):
                annotation = str(field.type)
                if annotation.startswith("list"):
                    return "array"
                if annotation.startswith("dict") and "list" not in annotation:
                    return "object"
    return None


def data_package(
    directory: Path,
    resources: dict[str, tuple[Path, list[str]]],
    manifest: dict[str, Any],
    holds: Callable[[str, list[str], str, list[str]], bool],
    title: str,
    pseudonyms: Pseudonyms | None = None,
) -> dict[str, Any]:
    """``datapackage.json`` (Data Package v2) for the tables in ``directory``: per table its file
    and columns; ``holds(table, fields, other, other_fields)`` says whether a foreign key holds in
    the data (only those that do are declared); with ``pseudonyms``, the accounts a query names
    are pseudonymised as the tables are."""
    from tiktok_spiders import codebook

    parts = []
    for table, (path, columns) in resources.items():
        # lists and objects: JSON text in CSV (array, object); in Parquet nested types, which
        # Table Schema has no type for ("any")
        nested = json_kind if path.suffix == ".csv" else lambda column: "any"
        schema: dict[str, Any] = {"fields": [field_schema(table, c, nested(c)) for c in columns]}
        kind = KINDS.get(table)
        if kind is not None and all(field in columns for field in kind.key_fields):
            schema["primaryKey"] = list(kind.key_fields)
        keys = [
            {"fields": fields, "reference": {"resource": other, "fields": other_fields}}
            for source, fields, other, other_fields in FOREIGN_KEYS
            if source == table
            and other in resources
            and all(f in columns for f in fields)
            and holds(source, fields, other, other_fields)
        ]
        if keys:
            schema["foreignKeys"] = keys
        resource: dict[str, Any] = {
            "name": table,
            "path": path.name,
            "type": "table",
            "format": path.suffix.lstrip("."),
            "mediatype": {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}.get(
                path.suffix.lstrip("."), "application/octet-stream"
            ),
            "encoding": "utf-8",
            "description": codebook.TABLE_DESCRIPTIONS.get(table, f"the {table} feed, typed"),
            "schema": schema,
        }
        if path.suffix == ".csv":
            resource["dialect"] = {"header": True, "delimiter": ",", "quoteChar": '"'}
        parts.append(resource)
    stages = manifest.get("stages", {})
    return {
        "$schema": "https://datapackage.org/profiles/2.0/datapackage.json",
        "name": re.sub(r"[^a-z0-9._-]+", "-", title.lower()).strip("-") or "tiktok-study",
        "title": f"TikTok Research API study: {title}",
        "created": clock.stamp(),
        "description": "Collected from the TikTok Research API with tiktok-spiders; each record's collected_at says "
        "when. The query as sent, the dates and the refreshes are under tiktok_spiders.",
        "sources": [
            {"title": "TikTok Research API", "path": manifest.get("api_base_url") or "https://open.tiktokapis.com"}
        ],
        "resources": parts,
        "tiktok_spiders": {
            "tool": manifest.get("tool"),
            "stages": {
                name: {
                    "sent": sent(stage, pseudonyms),
                    "first_collected_at": stage.get("first_collected_at"),
                    "last_collected_at": stage.get("last_collected_at"),
                    "api_coverage": stage.get("api_coverage"),
                }
                for name, stage in stages.items()
            },
            "refreshes": manifest.get("refreshes", []),
            # where the tables were written is a path on the researcher's machine: not published
            **(
                {"pseudonymized": {k: v for k, v in manifest["pseudonymized_tables"].items() if k != "directory"}}
                if "pseudonymized_tables" in manifest
                else {}
            ),
        },
    }


def sent(stage: dict[str, Any], pseudonyms: Pseudonyms | None) -> Any:
    """What a stage's last run sent, as the manifest says (a query's accounts pseudonymised)."""
    what = (stage.get("runs") or [{}])[-1].get("sent")
    if pseudonyms is None or not isinstance(what, dict) or "query" not in what:
        return what
    return {**what, "query": pseudonyms.query(what["query"])}


def study_title(data_dir: Path) -> str:
    """What a study is called: its data directory's name, or its folder's when that is just ``data``."""
    directory = data_dir.resolve()
    return directory.parent.name if directory.name.lower() == "data" and directory.parent.name else directory.name


def write_json(path: Path, document: dict[str, Any], private: bool = True) -> None:
    from tiktok_spiders.files import atomic_write

    with atomic_write(path, private=private) as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
