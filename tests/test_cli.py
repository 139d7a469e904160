"""``scrapy crawl`` as a researcher runs it: one-line errors, exit statuses, no secret anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scrapy.settings import Settings

from tests.conftest import (
    MONTH_ARGS,
    assert_one_line_error,
    cli_env,
    read_jsonl,
    scrapy_cli,
    settings_for,
    snapshot,
    spider_args,
)
from tiktok_spiders.emulator import DEMO_CLIENT_SECRET, Emulator, Faults
from tiktok_spiders.spiders.arguments import BadArgument
from tiktok_spiders.spiders.videos import VideosSpider

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

VIDEO_ARGS = {"hashtags": "climate", "start_date": "2024-01-01", "end_date": "2024-01-20"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory holding an earlier study's feeds, which bad input must not touch."""
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "videos.jsonl").write_text('{"id": 7320768196569599275, "username": "s.clovis"}\n')
    return directory


BAD_VIDEO_ARGUMENTS = [
    ({**VIDEO_ARGS, "query": "{not json"}, "not valid JSON"),
    ({**VIDEO_ARGS, "query": "missing-query.json"}, "query file missing-query.json does not exist"),
    ({**VIDEO_ARGS, "fields": "id,favourites_count"}, "unknown field 'favourites_count'"),
    (
        {
            **VIDEO_ARGS,
            "query": '{"and": [{"field_name": "hashtag_name", "operation": "LIKE", "field_values": ["x"]}]}',
        },
        "unknown operation 'LIKE'",
    ),
    (
        {**VIDEO_ARGS, "query": '{"and": [{"field_name": "hashtags", "operation": "IN", "field_values": ["x"]}]}'},
        "unknown field_name 'hashtags'",
    ),
    ({**VIDEO_ARGS, "regions": "US,UK"}, "unknown region code 'UK' (use GB)"),
    (
        {
            **VIDEO_ARGS,
            "query": '{"and": [{"field_name": "region_code", "operation": "EQ", "field_values": ["US", "GB"]}]}',
        },
        "operation EQ must have one field value",
    ),
    ({**VIDEO_ARGS, "end_date": "2023-12-31"}, "end_date 2023-12-31 is before start_date 2024-01-01"),
    ({**VIDEO_ARGS, "start_date": "2024-13-01"}, "start_date '2024-13-01' is not a date"),
    ({"hashtags": "climate", "start_date": "2024-01-01"}, "end_date is required"),
    ({"start_date": "2024-01-01", "end_date": "2024-01-02"}, "say what to collect"),
    ({**VIDEO_ARGS, "window_days": "31"}, "window_days must be between 1 and 30"),
    ({**VIDEO_ARGS, "hashtag": "climate"}, "unknown argument 'hashtag'"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_VIDEO_ARGUMENTS)
def test_bad_video_arguments_are_one_sentence(
    emulator: Emulator, data_dir: Path, arguments: dict, message: str
) -> None:
    """What ``scrapy crawl`` checks before anything runs, in-process (the test below runs the command)."""
    with pytest.raises(BadArgument) as raised:
        VideosSpider.check(Settings(settings_for(emulator, data_dir)), **arguments)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_bad_input_is_exit_status_2_one_line_and_writes_nothing(emulator: Emulator, data_dir: Path) -> None:
    before = snapshot(data_dir.parent)
    for arguments, message in (BAD_VIDEO_ARGUMENTS[0], BAD_VIDEO_ARGUMENTS[-1]):
        done = scrapy_cli(data_dir.parent, cli_env(emulator, data_dir), "crawl", "videos", *spider_args(arguments))
        assert_one_line_error(done, message)
    assert snapshot(data_dir.parent) == before


def test_missing_credentials(emulator: Emulator, data_dir: Path) -> None:
    before = snapshot(data_dir.parent)
    env = {key: value for key, value in cli_env(emulator, data_dir).items() if key != "TIKTOK_CLIENT_SECRET"}
    done = scrapy_cli(data_dir.parent, env, "crawl", "videos", *spider_args(VIDEO_ARGS))
    assert_one_line_error(done, "TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET are not set")
    assert snapshot(data_dir.parent) == before


@pytest.mark.parametrize(
    ("spider", "arguments", "hint"),
    [
        ("comments", {}, "-a videos=PATH"),
        ("users", {}, "-a videos=PATH"),
        ("comments", {"videos": "nope.jsonl"}, "-a videos=PATH"),
        ("replies", {}, "-a comments=PATH"),
        ("followers", {}, "-a users=PATH"),
    ],
)
def test_a_missing_seed_file_says_which_argument_names_another(
    emulator: Emulator, tmp_path: Path, spider: str, arguments: dict, hint: str
) -> None:
    from scrapy.spiderloader import SpiderLoader

    settings = Settings(settings_for(emulator, tmp_path))
    with pytest.raises(BadArgument) as raised:
        SpiderLoader.from_settings(settings).load(spider).check(settings, **arguments)
    assert "does not exist" in str(raised.value) and hint in str(raised.value)


def test_a_missing_seed_file_is_exit_status_2_and_writes_nothing(emulator: Emulator, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = scrapy_cli(tmp_path, cli_env(emulator, empty), "crawl", "comments")
    assert_one_line_error(done, "does not exist")
    assert list(empty.iterdir()) == []


def test_comments_video_ids_must_be_numbers(emulator: Emulator, tmp_path: Path) -> None:
    done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path), "crawl", "comments", "-a", "video_ids=12,abc")
    assert_one_line_error(done, "video_ids must be numbers")


def test_wrong_credentials_stop_at_once_with_one_sentence(emulator: Emulator, data_dir: Path) -> None:
    env = cli_env(emulator, data_dir, TIKTOK_CLIENT_SECRET="not-the-secret")
    done = scrapy_cli(data_dir.parent, env, "crawl", "videos", *spider_args(VIDEO_ARGS))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "The API refused the client key and secret (invalid_client" in done.stderr
    assert "not-the-secret" not in done.stderr
    assert done.stderr.count("/v2/oauth/token/") <= 3, "no retry storm"


def test_malformed_seed_lines_are_skipped_and_counted(emulator: Emulator, tmp_path: Path) -> None:
    video = emulator.corpus.videos[0]
    feed = tmp_path / "videos.jsonl"
    feed.write_text(
        "\n".join([json.dumps({"id": video["id"], "username": "x"}), "{broken", '{"id": "abc"}', "[1, 2]", ""])
    )
    done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path), "crawl", "comments", "-a", f"videos={feed}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "seed feed: 3 malformed lines skipped" in done.stderr
    [log] = (tmp_path / "logs").glob("*-comments.log")  # Scrapy's stats are in the run's log
    assert "'tiktok/seeds/malformed': 3" in log.read_text(encoding="utf-8")
    assert {row["video_id"] for row in read_jsonl(tmp_path / "comments.jsonl")} <= {video["id"]}


def test_comments_and_users_read_csv_and_json_feeds(emulator: Emulator, tmp_path: Path) -> None:
    videos = emulator.corpus.videos[:5]
    csv_feed = tmp_path / "seed.csv"
    csv_feed.write_text("id,username\n" + "".join(f"{v['id']},{v['username'].replace(chr(0), '')}\n" for v in videos))
    json_feed = tmp_path / "seed.json"
    json_feed.write_text(
        "[\n" + ",\n".join(json.dumps({"id": v["id"], "username": v["username"]}) for v in videos) + "\n]"
    )
    for spider, feed, column, out in (
        ("comments", csv_feed, "video_id", "comments"),
        ("users", json_feed, "username", None),
    ):
        done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path / spider), "crawl", spider, "-a", f"videos={feed}")
        assert done.returncode == 0, done.stderr[-2000:]
        if out:
            assert {row[column] for row in read_jsonl(tmp_path / spider / f"{out}.jsonl")} <= {v["id"] for v in videos}
    users = read_jsonl(tmp_path / "users" / "users.jsonl") + read_jsonl(tmp_path / "users" / "users_unavailable.jsonl")
    assert {row["username"] for row in users} == {emulator.corpus.real_username(v) for v in videos}


def test_an_end_date_within_the_indexing_lag_is_warned_about(emulator: Emulator, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    arguments = {"hashtags": "climate", "start_date": str(today - timedelta(days=3)), "end_date": str(today)}
    done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path), "crawl", "videos", *spider_args(arguments))
    assert done.returncode == 0
    assert "indexing lag" in done.stderr


def test_no_secret_or_token_in_debug_logs_feeds_or_state(fresh_emulator: Emulator, tmp_path: Path) -> None:
    fresh_emulator.faults = Faults.all_on(daily_requests=100_000, rate_limit_per_second=0)
    env = cli_env(fresh_emulator, tmp_path)
    logs = []
    for spider, arguments in (("videos", MONTH_ARGS), ("comments", {}), ("users", {})):
        done = scrapy_cli(tmp_path, env, "crawl", spider, "-s", "LOG_LEVEL=DEBUG", *spider_args(arguments))
        assert done.returncode == 0, done.stderr[-2000:]
        logs.append(done.stderr + done.stdout)
    tokens = fresh_emulator.issued_tokens
    # one per crawl at least (2-second tokens make most crawls renew theirs, but that depends on speed)
    assert len(tokens) >= 3
    assert re.search(r"Crawled \(200\) <POST .*/v2/research/video/query/", logs[0]), "DEBUG logs were captured"
    haystacks = {"logs": "\n".join(logs).encode()}
    haystacks.update({str(path): path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()})
    for where, content in haystacks.items():
        for secret in (DEMO_CLIENT_SECRET, *tokens):
            assert secret.encode() not in content, f"a secret leaked into {where}"


def test_scrapy_output_options_hold_this_runs_records_and_say_where_the_rest_are(
    emulator: Emulator, tmp_path: Path
) -> None:
    corpus = emulator.corpus
    usernames = [name for name in corpus.users if corpus.unavailable_reason(name) is None][:8]
    env = cli_env(emulator, tmp_path / "data")
    first = scrapy_cli(tmp_path, env, "crawl", "users", "-a", f"usernames={','.join(usernames[:5])}")
    assert first.returncode == 0, first.stderr[-2000:]
    out = tmp_path / "out.jsonl"
    done = scrapy_cli(tmp_path, env, "crawl", "users", "-a", f"usernames={','.join(usernames)}", "-O", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(row["username"] for row in read_jsonl(out)) == sorted(usernames[5:]), "asked once: the new three"
    assert "-o/-O hold the 3 users this run stored, of 8 in" in done.stderr
    assert str(tmp_path / "data" / "users.jsonl") in done.stderr
    default = read_jsonl(tmp_path / "data" / "users.jsonl")
    assert sorted(row["username"] for row in default) == sorted(usernames), "what the next stage reads: all"

    again = scrapy_cli(tmp_path, env, "crawl", "users", "-a", f"usernames={','.join(usernames[5:])}", "-O", str(out))
    assert again.returncode == 0 and "-o/-O hold" in again.stderr and read_jsonl(out) == []

    before = (tmp_path / "data" / "users.jsonl").read_bytes()
    for own in ("data/users.jsonl", str(tmp_path / "data" / "users.csv"), "data/%(name)s.jsonl"):
        refused = scrapy_cli(tmp_path, env, "crawl", "users", "-a", f"usernames={usernames[0]}", "-O", own)
        assert_one_line_error(refused, "is a feed the study writes itself from the ledger")
    assert (tmp_path / "data" / "users.jsonl").read_bytes() == before


def test_dotenv_configures_and_the_environment_and_s_win(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path / "from-env")
    (tmp_path / ".env").write_text(
        "".join(f"{key}={value}\n" for key, value in {**env, "TIKTOK_DATA_DIR": str(tmp_path / "from-dotenv")}.items())
    )
    usernames = ",".join(list(emulator.corpus.users)[:3])
    only_dotenv = scrapy_cli(tmp_path, {}, "crawl", "users", "-a", f"usernames={usernames}")
    assert only_dotenv.returncode == 0, only_dotenv.stderr[-2000:]
    assert (tmp_path / "from-dotenv" / "users.jsonl").exists()
    environment = scrapy_cli(
        tmp_path, {"TIKTOK_DATA_DIR": str(tmp_path / "from-env")}, "crawl", "users", "-a", f"usernames={usernames}"
    )
    assert environment.returncode == 0 and (tmp_path / "from-env" / "users.jsonl").exists()
    command_line = scrapy_cli(
        tmp_path,
        {"TIKTOK_DATA_DIR": str(tmp_path / "from-env")},
        "crawl",
        "users",
        "-a",
        f"usernames={usernames}",
        "-s",
        f"TIKTOK_DATA_DIR={tmp_path / 'from-s'}",
    )
    assert command_line.returncode == 0 and (tmp_path / "from-s" / "users.jsonl").exists()


def test_a_misspelled_setting_is_exit_2_and_spends_nothing(fresh_emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(fresh_emulator, tmp_path / "data")
    args = ("crawl", "videos", *spider_args(VIDEO_ARGS))
    typo = scrapy_cli(tmp_path, env, *args[:2], "-s", "TIKTOK_DAILY_REQEST_LIMIT=2", *args[2:])
    assert_one_line_error(
        typo, "-s TIKTOK_DAILY_REQEST_LIMIT: there is no such setting (did you mean TIKTOK_DAILY_REQUEST_LIMIT?)"
    )
    assert fresh_emulator.usage().requests == 0 and not (tmp_path / "data").exists()
    # in .env or the environment only the known names are read: a typo there is a warning, once
    (tmp_path / ".env").write_text("TIKTOK_DATADIR=elsewhere\n", encoding="utf-8")
    done = scrapy_cli(tmp_path, {**env, "TIKTOK_DAILY_REQEST_LIMIT": "2"}, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    warnings = [line for line in done.stderr.splitlines() if "is not a setting" in line]
    assert warnings == [
        "warning: TIKTOK_DAILY_REQEST_LIMIT in the environment is not a setting, and is ignored "
        "(did you mean TIKTOK_DAILY_REQUEST_LIMIT?)",
        "warning: TIKTOK_DATADIR in .env is not a setting, and is ignored (did you mean TIKTOK_DATA_DIR?)",
    ]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("crawl", "videos", "--hashtags=climate"),
            "unknown option --hashtags=climate for scrapy crawl: spider arguments are given as -a name=value",
        ),
        (
            ("crawl", "videos", "-a", "hashtag=climate"),
            "unknown argument 'hashtag' for spider videos (did you mean hashtags?",
        ),
        (("study", "x.toml", "--fressh"), "unknown option --fressh for scrapy study"),
        (("tables", "--formt", "csv"), "unknown option --formt for scrapy tables"),
        (("refresh", "--confirm_purge"), "unknown option --confirm_purge for scrapy refresh"),
        (("report", "--ouput", "x.html"), "unknown option --ouput for scrapy report"),
    ],
)
def test_a_typo_on_the_command_line_is_named_in_one_line(
    emulator: Emulator, tmp_path: Path, args: tuple, said: str
) -> None:
    done = scrapy_cli(tmp_path, cli_env(emulator, tmp_path / "data"), *args)
    assert_one_line_error(done, said)
    assert not (tmp_path / "data").exists()
