"""``tiktok-spiders``: the project's commands from any folder.

A study folder holds its ``.env``, its study files and its ``data/``; from there::

    tiktok-spiders study climate.toml
    tiktok-spiders crawl videos -a hashtags=climate -a start_date=2024-01-01 -a end_date=2024-01-31
    tiktok-spiders tables
    tiktok-spiders refresh
    tiktok-spiders sandbox --port 8000     # the Research API emulator

They are the ``scrapy`` commands of this project, with the same arguments; inside
the project's checkout ``scrapy …`` works as well.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sandbox"]:
        from tiktok_spiders.emulator.__main__ import main as sandbox

        sys.exit(sandbox(argv[1:]))
    # the project's settings wherever this runs: a study folder is not a Scrapy project
    os.environ["SCRAPY_SETTINGS_MODULE"] = "tiktok_spiders.settings"
    from scrapy.cmdline import execute

    execute(["tiktok-spiders", *argv])


if __name__ == "__main__":
    main()
