"""``scrapy`` commands for the tests, each in a process of its own, without importing Scrapy each time.

Every command imports Scrapy, Twisted, DuckDB and the project before it does anything (``tables``
and ``report`` pandas and matplotlib too): a second of CPU or more, and the suite runs a hundred
commands.  This server imports them once and forks a process per command, which runs
``scrapy.cmdline`` as ``python -m scrapy.cmdline`` does, in the test's folder, with the test's
environment and nothing else, its output to files, and exits with the command's status (0.1 s for
a command that stops at its arguments).  The project's settings module is not imported here: it
reads the environment when imported, and each command imports it with its own, as a fresh
process does.  Tests of what starts a process (the installed command, Ctrl-C, ``kill -9``,
file-size limits) start one the usual way.

Protocol, one JSON line each way: ``{"args", "cwd", "env", "stdout", "stderr"}`` in, and optionally
``"clock_days"`` (the command's clock, ``tiktok_spiders.clock``, that many days ahead), ``"kill_at"``
(``"module:Name.attribute"`` and ``"before"`` or ``"after"``: the command kills itself with SIGKILL
around that function's first call, a ``kill -9`` at a precise step) and ``"file_size"`` (its files
cannot grow past that many bytes, as on a full disk); ``{"pid"}`` when the command has started,
``{"status"}`` when it has ended.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import pkgutil
import resource
import runpy
import signal
import sys

#: What commands import first: Scrapy, Twisted and DuckDB for all; pandas, pyarrow and
#: matplotlib for ``tables`` and ``report`` (another second each).  Not ``twisted.internet.reactor``:
#: each command installs its own.
PRELOAD = (
    "scrapy",
    "scrapy.commands",
    "scrapy.crawler",
    "scrapy.http",
    # the HTTP download handler: its TLS module builds deprecated aliases with inspect.stack(), which
    # looks every loaded module up (0.37 s in a process that has pandas and matplotlib loaded)
    "scrapy.core.downloader.handlers.http11",
    "twisted.web.http",
    "duckdb",
    "dotenv",
    "pandas",
    "pyarrow.parquet",
    "matplotlib.pyplot",
)
#: A process with threads is not safe to fork, and importing numpy and pyarrow starts some:
#: OpenBLAS's pool and jemalloc's background thread.  Without them the libraries work the same
#: (the tables' bytes do not change); only how memory is given back and BLAS is parallel does.
#: Matplotlib gets the backend ``report`` asks for, Agg, without looking for a display.
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "JE_ARROW_MALLOC_CONF": "background_thread:false", "MPLBACKEND": "Agg"}


def scrapy_commands() -> list[str]:
    """Scrapy's own command modules: ``scrapy.cmdline`` imports every one of them to list the
    commands (``parse`` brings itemadapter and pydantic, ``bench`` Twisted's web client): 0.2 s
    of each command."""
    import scrapy.commands

    return [m.name for m in pkgutil.iter_modules(scrapy.commands.__path__, "scrapy.commands.")]


def project_modules() -> list[str]:
    """Every module of the project but ``tiktok_spiders.settings``, which reads the environment and
    ``.env`` when imported: each command imports it anew, with its own (none of the others reads
    either).  Importing them took 0.18 s of each command."""
    import tiktok_spiders

    found = pkgutil.walk_packages(tiktok_spiders.__path__, "tiktok_spiders.")
    return [m.name for m in found if m.name != "tiktok_spiders.settings" and not m.name.endswith(".__main__")]


def _command(job: dict) -> None:
    """In the forked process: become the command, then run it (its SystemExit ends the process)."""
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    if job.get("clock_days"):
        _move_clock(job["clock_days"])
    if job.get("kill_at"):
        _kill_at(*job["kill_at"])
    if job.get("file_size"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), as ENOSPC would be
        resource.setrlimit(resource.RLIMIT_FSIZE, (job["file_size"], job["file_size"]))
    sys.path[0] = job["cwd"]  # as ``python -m`` started there
    sys.argv = ["scrapy", *job["args"]]
    runpy.run_module("scrapy.cmdline", run_name="__main__", alter_sys=True)
    sys.exit(0)


def _move_clock(days: float) -> None:
    from datetime import timedelta

    from tiktok_spiders import clock

    real_now = clock.now
    clock.now = lambda: real_now() + timedelta(days=days)  # type: ignore[assignment]


def _kill_at(target: str, when: str) -> None:
    """SIGKILL this process just before or just after the first call of ``module:Name.attribute``."""
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    real = getattr(owner, name)

    def killing(*args: object, **kwargs: object) -> object:
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, killing)


def serve() -> None:
    os.environ.update(SINGLE_THREADED)
    for module in PRELOAD:
        importlib.import_module(module)
    for module in (*scrapy_commands(), *project_modules()):
        importlib.import_module(module)
    assert "twisted.internet.reactor" not in sys.modules, "a command installs its reactor itself"
    assert "tiktok_spiders.settings" not in sys.modules, "each command reads its own environment"
    assert len(os.listdir("/proc/self/task")) == 1, "one thread: forking a process with more can deadlock"
    # What was imported is never collected: a command's collection (Scrapy runs one as it starts)
    # would otherwise write to every object, so copy the server's whole memory: 0.85 s a command
    # with it, 0.33 s without (the gc module's advice for a process that forks).
    gc.freeze()
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _command(job)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    serve()
