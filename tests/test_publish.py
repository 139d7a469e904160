"""Publishing: pseudonymised tables, the data package, the ids alone, spreadsheets, the citation.

The study here is collected from a sandbox whose people were given hostile strings: display names
that are spreadsheet formulas, HTML and their own usernames, bios with addresses, descriptions and
comments that @mention accounts.  What is published is read back as a reader would — every file's
bytes decoded (Parquet, workbooks and DuckDB through their own readers) — never trusted by name.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import SMALL, cli_env, read_jsonl, scrapy_cli, spider_args
from tiktok_spiders import publish, staging
from tiktok_spiders.emulator import Corpus, Emulator, Faults
from tiktok_spiders.ledger import FILENAME as LEDGER
from tiktok_spiders.ledger import Ledger

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

ROOT = Path(__file__).resolve().parent.parent
#: 86 videos by 81 authors over ten days, comments capped at 40 a video.
STUDY = {"hashtags": "climate,vote,fyp", "start_date": "2024-01-01", "end_date": "2024-01-10"}
CAP = "40"
#: Display names a spreadsheet would run, a page would render, and that name the account.
HOSTILE_NAMES = (
    '=HYPERLINK("https://evil.example/{u}","{u}")',
    "<script>alert('{u}')</script>",
    "+{u} 📞 40******30",
)


def hostile_corpus() -> Corpus:
    """The tests' sandbox content (a corpus of its own: the shared one is never changed) with
    hostile strings wherever a person is named."""
    corpus = Corpus(SMALL)
    names = list(corpus.users)
    for number, (username, profile) in enumerate(corpus.users.items()):
        profile["display_name"] = HOSTILE_NAMES[number % len(HOSTILE_NAMES)].format(u=username)
        profile["bio_description"] = f"mail {username}@example.org or call 40******30"
        profile["bio_url"] = f"https://example.org/{username}"
    corpus._display_names = [profile["display_name"] for profile in corpus.users.values()]
    for number, video in enumerate(corpus.videos):
        other = names[(number * 7) % len(names)]
        video["video_description"] = f'=cmd|" /C calc"!A0 <b>look</b> cc @{other}. ' + video["video_description"]
        video["video_mention_list"] = [other.title()]
        video["voice_to_text"] = f"shout out to @{other}!"
    made = corpus.comments

    @functools.cache
    def comments(video_id: int) -> tuple[dict[str, Any], ...]:  # every other comment @mentions the author
        author = corpus.real_username(corpus.video_by_id[video_id]) if video_id in corpus.video_by_id else "x"
        return tuple(
            {**comment, "text": f"@{author} {comment['text']}"} if number % 2 == 0 else comment
            for number, comment in enumerate(made(video_id))
        )

    corpus.comments = comments  # type: ignore[method-assign]
    return corpus


@pytest.fixture(scope="module")
def sandbox() -> Emulator:
    with Emulator(hostile_corpus(), faults=Faults(daily_requests=10**6, daily_records=10**9)) as api:
        yield api


@pytest.fixture(scope="module")
def study(sandbox: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study's data directory: videos, comments, authors, the followers of three of them."""
    data_dir = tmp_path_factory.mktemp("published")
    env = env_for(sandbox, data_dir)
    for command in (("crawl", "videos", *spider_args(STUDY)), ("crawl", "comments"), ("crawl", "users")):
        done = scrapy_cli(data_dir, env, *command)
        assert done.returncode == 0, done.stderr[-2000:]
    authors = sorted({video["username"] for video in read_jsonl(data_dir / "videos.jsonl")})[:3]
    done = scrapy_cli(data_dir, env, "crawl", "followers", "-a", f"usernames={','.join(authors)}")
    assert done.returncode == 0, done.stderr[-2000:]
    for args in ((), ("--format", "csv"), ("--format", "duckdb"), ("--format", "xlsx")):
        for published in ((), ("--pseudonymize",)):
            done = scrapy_cli(data_dir, env, "tables", *args, *published)
            assert done.returncode == 0, done.stderr[-2000:]
    done = scrapy_cli(data_dir, env, "tables", "--ids-only")
    assert done.returncode == 0, done.stderr[-2000:]
    return data_dir


def env_for(sandbox: Emulator, data_dir: Path) -> dict[str, str]:
    return cli_env(
        sandbox,
        data_dir,
        TIKTOK_COMMENT_CAP=CAP,
        TIKTOK_DAILY_REQUEST_LIMIT="100000",
        TIKTOK_COMPLIANCE_POLL_SECONDS="0.01",
    )


def people(data_dir: Path) -> tuple[set[str], set[str]]:
    """Every account the study's feeds name (lower case) and every display name in them."""
    accounts: set[str] = set()
    names: set[str] = set()
    for feed in ("videos", "comments", "users", "followers"):
        for record in read_jsonl(data_dir / f"{feed}.jsonl"):
            for field in ("username", "seed_username"):
                if record.get(field):
                    accounts.add(record[field].lower())
            accounts.update(name.lower() for name in record.get("video_mention_list") or [])
            if record.get("display_name"):
                names.add(record["display_name"])
    text = "\n".join(path.read_text(encoding="utf-8") for path in data_dir.glob("*.jsonl")).lower()
    handles = {name for name in (n.lower() for n in Corpus(SMALL).users) if f"@{name}" in text}
    return accounts | handles, names


def decoded(path: Path) -> str:
    """A published file as a reader gets it: its text, whatever its format keeps it in."""
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False, default=str)
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as workbook:
            return "\n".join(workbook.read(member).decode("utf-8") for member in workbook.namelist())
    if path.suffix == ".duckdb":
        with duckdb.connect(str(path), read_only=True) as database:
            names = [n for (n,) in database.execute("SELECT table_name FROM information_schema.tables").fetchall()]
            rows = [database.execute(f'SELECT * FROM "{name}"').fetchall() for name in names]  # noqa: S608
        return json.dumps(rows, ensure_ascii=False, default=str)
    return path.read_bytes().decode("utf-8")


def test_pseudonymized_tables_name_no_one_of_the_study(study: Path) -> None:
    accounts, names = people(study)
    assert len(accounts) > 300 and len(names) > 300, "followers, commenters and mentions are in the study"
    out = study / publish.PSEUDONYMIZED_DIR
    files = sorted(path for path in out.iterdir() if path.is_file())
    suffixes = {path.suffix for path in files}
    assert suffixes == {".parquet", ".csv", ".duckdb", ".xlsx", ".md", ".json"}, files
    plain = {path.name: decoded(path) for path in (study / "tables").iterdir() if path.suffix != ".md"}
    assert any("<script>" in text for text in plain.values()), "the hostile strings are in the study's own tables"
    for path in files:
        text = decoded(path)
        lower = text.lower()
        leaked = sorted(account for account in accounts if account in lower)
        assert not leaked, f"{path.name} names accounts: {leaked[:5]}"
        named = sorted(name for name in names if name in text)
        assert not named, f"{path.name} holds display names: {named[:3]}"
        assert "@example.org" not in text and "tiktokcdn" not in text, f"{path.name}: a bio or an avatar"
    key = Ledger(study).meta(publish.KEY_NAME)
    assert key and len(key) == 64
    for path in study.rglob("*"):
        if path.is_file() and not path.name.startswith(LEDGER):
            assert key.encode() not in path.read_bytes(), f"{path} holds the pseudonyms' key"


def test_pseudonyms_join_the_tables_as_the_usernames_did(study: Path) -> None:
    def joined(directory: str) -> tuple[set, set, set]:
        videos = pd.read_parquet(study / directory / "videos.parquet")
        users = pd.read_parquet(study / directory / "users.parquet")
        followers = pd.read_parquet(study / directory / "followers.parquet")
        authors = videos.merge(users, on="username", suffixes=("", "_user"))
        by_author = {(int(r.id), int(r.follower_count)) for r in authors.itertuples()}
        seeds = followers.merge(users, left_on="seed_username", right_on="username", suffixes=("", "_seed"))
        by_seed = {(int(r.follower_count), r.display_name is None) for r in seeds.itertuples()}
        # a video's mention of an author of the study: the same account in both columns
        mentions = {
            int(row.id)
            for row in videos.itertuples()
            for mention in row.video_mention_list
            if mention.lower() in {name.lower() for name in users["username"]}
        }
        return by_author, by_seed, mentions

    plain, pseudonymised = joined("tables"), joined(publish.PSEUDONYMIZED_DIR)
    assert len(plain[0]) > 50 and plain[1] and plain[2]
    assert pseudonymised == plain
    # the joined columns the tables write hold the same values under pseudonyms
    before = pd.read_parquet(study / "tables" / "comments.parquet")
    after = pd.read_parquet(study / publish.PSEUDONYMIZED_DIR / "comments.parquet")
    assert after["id"].tolist() == before["id"].tolist() and after["text"].str.startswith("@").sum() > 100
    assert after["video_username"].nunique() == before["video_username"].nunique()
    assert (after["video_username"].str.startswith("user_")).all()
    with duckdb.connect(str(study / publish.PSEUDONYMIZED_DIR / "study.duckdb"), read_only=True) as database:
        [(authored,)] = database.execute(
            "SELECT count(*) FROM videos_with_authors WHERE author_follower_count IS NOT NULL"
        ).fetchall()
    assert authored == len(plain[0])


def test_pseudonyms_are_the_same_each_time_and_the_manifest_says_what_was_done(study: Path, sandbox: Emulator) -> None:
    out = study / publish.PSEUDONYMIZED_DIR
    before = pd.read_parquet(out / "videos.parquet")
    done = scrapy_cli(study, env_for(sandbox, study), "tables", "--pseudonymize")
    assert done.returncode == 0, done.stderr[-2000:]
    after = pd.read_parquet(out / "videos.parquet")
    assert after["username"].tolist() == before["username"].tolist()
    other = publish.Pseudonyms(bytes(32))
    assert other.account("somebody") != publish.Pseudonyms(bytes.fromhex(Ledger(study).meta(publish.KEY_NAME))).account(
        "somebody"
    ), "another study's key gives other pseudonyms"
    assert "avatar_url" not in after.columns and "author_bio_description" not in after.columns
    manifest = json.loads((study / "manifest.json").read_text(encoding="utf-8"))
    note = manifest["pseudonymized_tables"]
    assert "videos.username" in note[publish.WORDS["account"]]
    assert "users.bio_description" in note[publish.WORDS["drop"]]
    assert "may still identify people" in note["not pseudonymised"]
    codebook = (out / "codebook.md").read_text(encoding="utf-8")
    assert publish.WORDS["drop"] in codebook and publish.WORDS["mentions"] in codebook


@pytest.mark.parametrize("directory", ["tables", publish.PSEUDONYMIZED_DIR])
def test_the_data_package_validates_with_frictionless(study: Path, sandbox: Emulator, directory: str) -> None:
    frictionless = Path(sys.executable).with_name("frictionless")
    for fmt in ("csv", "parquet"):  # the package describes one format: each written into a folder of its own
        out = study / f"package-{directory}-{fmt}"
        shutil.rmtree(out, ignore_errors=True)
        args = ("--pseudonymize",) if directory != "tables" else ()
        done = scrapy_cli(study, env_for(sandbox, study), "tables", "--format", fmt, "--output-dir", str(out), *args)
        assert done.returncode == 0, done.stderr[-2000:]
        package = json.loads((out / "datapackage.json").read_text(encoding="utf-8"))
        resources = {resource["name"]: resource for resource in package["resources"]}
        assert set(resources) == {path.stem for path in study.glob("*.jsonl")}  # a table of each feed
        assert resources["videos"]["schema"]["primaryKey"] == ["id"]
        id_field = next(f for f in resources["videos"]["schema"]["fields"] if f["name"] == "id")
        assert id_field["type"] == "integer" and id_field["description"]
        keys = {
            (name, key["reference"]["resource"])
            for name, r in resources.items()
            for key in r["schema"].get("foreignKeys", [])
        }
        assert ("comments", "videos") in keys
        assert package["tiktok_spiders"]["stages"]["videos"]["sent"]["query"]
        assert str(study) not in (out / "datapackage.json").read_text(encoding="utf-8"), "no path of this machine"
        checked = subprocess.run(
            [str(frictionless), "validate", "--json", str(out / "datapackage.json")],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        report = json.loads(checked.stdout)
        errors = [error["message"] for task in report["tasks"] for error in task["errors"]][:5]
        assert checked.returncode == 0 and report["valid"], errors
        assert {task["name"] for task in report["tasks"]} == set(resources)


def test_a_query_of_accounts_is_pseudonymised_in_the_package_as_in_the_tables() -> None:
    pseudonyms = publish.Pseudonyms(bytes(range(32)))
    query = {
        "and": [{"field_name": "username", "operation": "IN", "field_values": ["Alice.b", "bob"]}],
        "not": [{"field_name": "keyword", "operation": "EQ", "field_values": ["alice.b"]}],
    }
    stage = {"runs": [{"sent": {"endpoint": "/v2/research/video/query/", "query": query}}]}
    sent = publish.sent(stage, pseudonyms)
    assert sent["query"]["and"][0]["field_values"] == [pseudonyms.account("alice.b"), pseudonyms.account("bob")]
    assert sent["query"]["not"] == query["not"], "a keyword is what was searched for, not an account"
    assert publish.sent(stage, None) == stage["runs"][0]["sent"]
    text = "thanks @Alice.b. and @müller_1, mail x@example.org"
    assert pseudonyms.mentions(text) == (
        f"thanks @{pseudonyms.account('alice.b')}. and @{pseudonyms.account('müller_1')}, mail x@example.org"
    )


def test_a_package_is_named_after_the_study_not_its_data_folder(tmp_path: Path) -> None:
    assert publish.study_title(tmp_path / "climate-2024" / "data") == "climate-2024"
    assert publish.study_title(tmp_path / "climate-data") == "climate-data"


def test_every_id_in_the_workbook_is_the_feeds_as_text_and_no_cell_is_a_formula(study: Path) -> None:
    feed = read_jsonl(study / "videos.jsonl")
    workbook = openpyxl.load_workbook(study / "tables" / "videos.xlsx")
    sheet = workbook["videos"]
    header = [cell.value for cell in sheet[1]]
    rows = list(sheet.iter_rows(min_row=2))
    assert len(rows) == len(feed)
    ids = [row[header.index("id")] for row in rows]
    assert [cell.value for cell in ids] == [str(record["id"]) for record in feed]
    assert all(cell.data_type == "s" for cell in ids)
    music = [row[header.index("music_id")].value for row in rows]
    assert music == [str(record["music_id"]) for record in feed]
    playlists = [row[header.index("playlist_id")].value for row in rows]  # sparse: never a float
    assert playlists == [str(r["playlist_id"]) if r.get("playlist_id") is not None else None for r in feed]
    assert any(playlists) and not all(playlists)
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula: {cell.value!r}"
    descriptions = [row[header.index("video_description")].value for row in rows]
    assert descriptions == [record["video_description"] for record in feed]
    assert all(text.startswith("=cmd|") for text in descriptions)
    created = [row[header.index("create_time (UTC)")].value for row in rows]
    assert created == [datetime.fromtimestamp(r["create_time"], UTC).replace(tzinfo=None) for r in feed]
    likes = [row[header.index("like_count")].value for row in rows]
    assert likes == [record.get("like_count") for record in feed], "counts are numbers, a missing one empty"


def test_a_table_past_a_sheets_rows_goes_on_to_the_next_and_a_long_text_is_refused(tmp_path: Path) -> None:
    chunk = pd.DataFrame({"id": pd.array([7495049616387738926, 2, 3, 4, 5], dtype="Int64"), "text": list("abcde")})
    rows, columns = staging.write_xlsx([chunk], tmp_path / "t.xlsx", "videos", rows_per_sheet=2)
    assert (rows, columns) == (5, 2)
    workbook = openpyxl.load_workbook(tmp_path / "t.xlsx")
    assert workbook.sheetnames == ["videos", "videos (2)", "videos (3)"]
    assert [[cell.value for cell in row] for row in workbook["videos"].iter_rows()] == [
        ["id", "text"],
        ["7495049616387738926", "a"],
        ["2", "b"],
    ]
    assert [row[1].value for row in workbook["videos (3)"].iter_rows()] == ["text", "e"]
    long = pd.DataFrame({"text": ["x" * (staging.CELL_CHARS + 1)]})
    with pytest.raises(ValueError, match="more than a spreadsheet cell holds"):
        staging.write_xlsx([long], tmp_path / "long.xlsx", "videos")
    assert not (tmp_path / "long.xlsx").exists(), "nothing cut short is left behind"


def test_the_ids_alone_collect_the_study_again(study: Path, sandbox: Emulator, tmp_path: Path) -> None:
    out = study / publish.IDS_DIR
    assert sorted(path.name for path in out.iterdir()) == [
        "codebook.md",
        "comments.csv",
        "datapackage.json",
        "videos.csv",
    ]
    assert pd.read_csv(out / "videos.csv", dtype=str).columns.tolist() == ["id", "music_id", "playlist_id"]
    ids = pd.read_csv(out / "videos.csv", dtype=str)["id"].tolist()
    again = tmp_path / "again"
    again.mkdir()
    env = env_for(sandbox, again)
    done = scrapy_cli(again, env, "crawl", "comments", "-a", f"videos={out / 'videos.csv'}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(c["id"] for c in read_jsonl(again / "comments.jsonl")) == sorted(
        c["id"] for c in read_jsonl(study / "comments.jsonl")
    )
    asked = ("crawl", "comments", "-a", f"videos={out / 'videos.csv'}", "-a", "min_comments=1")
    minimum = scrapy_cli(again, env, *asked)  # every video is done: nothing asked, but it is said
    assert minimum.returncode == 0, minimum.stderr[-2000:]
    assert "has no comment_count column: min_comments=1 cannot tell which to skip" in minimum.stderr
    named = scrapy_cli(study, env_for(sandbox, study), "tables", "users", "--ids-only")
    assert named.returncode == 2 and "users: no ids to share" in named.stderr and "Traceback" not in named.stderr
    dates = {name: STUDY[name] for name in ("start_date", "end_date")}
    done = scrapy_cli(again, env, "crawl", "videos", "-a", f"video_ids={','.join(ids)}", *spider_args(dates))
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(v["id"] for v in read_jsonl(again / "videos.jsonl")) == sorted(int(i) for i in ids)


def test_the_citation_is_valid_cff_of_this_version() -> None:
    cffconvert = ROOT / ".venv-tools" / "bin" / "cffconvert"
    assert cffconvert.exists(), "scripts/test.sh installs cffconvert into .venv-tools"
    checked = subprocess.run(
        [str(cffconvert), "--validate", "-i", str(ROOT / "CITATION.cff")], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert f"\nversion: {version}\n" in (ROOT / "CITATION.cff").read_text(encoding="utf-8")


def test_a_purge_writes_the_published_tables_again_without_what_is_gone(study: Path, sandbox: Emulator) -> None:
    videos = read_jsonl(study / "videos.jsonl")
    users = {user["username"] for user in read_jsonl(study / "users.jsonl")}
    author = next(video["username"] for video in videos if video["username"] in users)
    theirs = {str(video["id"]) for video in videos if video["username"] == author}
    pseudonym = publish.Pseudonyms(bytes.fromhex(Ledger(study).meta(publish.KEY_NAME))).account(author)
    sandbox.corpus.delete(users=[author])
    done = scrapy_cli(study, env_for(sandbox, study), "refresh", "-a", "confirm_purge=true")
    assert done.returncode == 0, done.stderr[-3000:]
    [log] = (study / "logs").glob("*-refresh.log")
    said = log.read_text(encoding="utf-8")
    assert "files in tables-pseudonymized/" in said and "files in tables-ids/" in said
    for directory in (publish.PSEUDONYMIZED_DIR, publish.IDS_DIR):
        for path in (study / directory).iterdir():
            text = decoded(path)
            assert not [i for i in theirs if i in text], f"{path} keeps a purged video"
            assert pseudonym not in text, f"{path} keeps a purged account's pseudonym"
    kept = pd.read_csv(study / publish.IDS_DIR / "videos.csv", dtype=str)["id"]
    assert sorted(kept) == sorted(str(v["id"]) for v in read_jsonl(study / "videos.jsonl"))
