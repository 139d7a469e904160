"""Study files: the examples are ones the study command takes; a bad one is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.settings import Settings

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))


def test_the_readmes_example_study_files_are_there() -> None:
    """Else the test below would be skipped for want of files, not fail."""
    assert {path.name for path in EXAMPLES} >= {"climate.toml", "query.toml", "rolling.toml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_study_file_is_one_the_study_command_takes(path: Path) -> None:
    from scrapy.spiderloader import SpiderLoader

    from tiktok_spiders.commands.study import load_study

    loader = SpiderLoader.from_settings(Settings({"SPIDER_MODULES": ["tiktok_spiders.spiders"]}))
    stages, arguments, _ = load_study(path, loader.list())
    for stage in stages:
        loader.load(stage)(**arguments[stage])  # BadArgument on an argument the spider does not take


SPIDERS = ["comments", "users", "videos"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[study\nstages = 1", "is not valid TOML"),
        ('[study]\nstage = ["videos"]', "unknown key 'stage' in [study] (did you mean stages?"),
        ("[study]\nstages = []", '[study] needs stages = ["videos", ...]'),
        ('[study]\nstages = ["videos", "comentz"]', "unknown stage 'comentz' (one of comments, users, videos)"),
        ('[study]\nstages = ["videos"]\n[vidoes]\nhashtags = ["a"]', "unknown stage 'vidoes'"),
    ],
)
def test_a_study_file_that_cannot_run_is_said_in_one_line_naming_the_file(tmp_path: Path, text: str, said: str) -> None:
    from tiktok_spiders.commands.study import StudyFileError, load_study

    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StudyFileError) as error:
        load_study(path, SPIDERS)
    message = str(error.value)
    assert said in message and str(path) in message and "\n" not in message


def test_study_file_values_become_the_arguments_scrapy_crawl_takes(tmp_path: Path) -> None:
    from tiktok_spiders.commands.study import load_study

    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nstages = ["videos", "comments"]\ndata_dir = "out"\n'
        '[videos]\nhashtags = ["climate", "vote"]\nwindow_days = 7\nis_random = true\n'
        'query = {and = [{field_name = "region_code", operation = "EQ", field_values = ["GB"]}]}\n',
        encoding="utf-8",
    )
    stages, arguments, data_dir = load_study(path, SPIDERS)
    assert stages == ["videos", "comments"] and data_dir == "out" and arguments["comments"] == {}
    assert arguments["videos"] == {
        "hashtags": "climate,vote",
        "window_days": "7",
        "is_random": "true",
        "query": '{"and": [{"field_name": "region_code", "operation": "EQ", "field_values": ["GB"]}]}',
    }
