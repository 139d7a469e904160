"""Settings: a bad value is named in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.settings import Settings

from tests.conftest import NoServer, settings_for
from tiktok_spiders.config import ConfigError, check_settings


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("TIKTOK_RETRY_TIMES", "abc", "TIKTOK_RETRY_TIMES must be a whole number, not 'abc'"),
        ("TIKTOK_RETRY_TIMES", "-1", "TIKTOK_RETRY_TIMES must be at least 0"),
        ("TIKTOK_RETRY_BACKOFF_BASE", "-2", "TIKTOK_RETRY_BACKOFF_BASE must be at least 0"),
        ("TIKTOK_DAILY_REQUEST_LIMIT", "1k", "TIKTOK_DAILY_REQUEST_LIMIT must be a whole number"),
        ("TIKTOK_TABLES_MEMORY_MB", "10", "TIKTOK_TABLES_MEMORY_MB must be at least 64, not '10'"),
        ("TIKTOK_WAIT_FOR_QUOTA_RESET", "yes please", "TIKTOK_WAIT_FOR_QUOTA_RESET must be true or false"),
        ("TIKTOK_FEED_FORMATS", "jsonl,xml", "TIKTOK_FEED_FORMATS: unknown format 'xml'"),
        ("TIKTOK_API_BASE_URL", "open.tiktokapis.com", "TIKTOK_API_BASE_URL must be an http(s) URL"),
    ],
)
def test_a_bad_setting_is_named_in_one_sentence(tmp_path: Path, setting: str, value: str, message: str) -> None:
    settings = Settings(settings_for(NoServer(), tmp_path, **{setting: value}))
    with pytest.raises(ConfigError) as error:
        check_settings(settings)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
