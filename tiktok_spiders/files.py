"""Files of a data directory: private permissions, atomic writes, one crawl at a time.

TikTok's terms oblige researchers to keep collected data secure, so the data
directory is created ``0700`` and every file in it ``0600`` unless
``TIKTOK_PRIVATE_FILES`` is false.  Every file we write goes to a ``.partial``
file first and is renamed, so a reader never sees half of one.  A data directory
is used by one process at a time: an OS file lock, which a crashed process cannot
leave behind, and a note of who holds it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

LOCK_FILENAME = ".tiktok-lock"


class DataDirBusy(RuntimeError):
    """Another process is using the data directory."""


def make_dir(path: Path, private: bool = True) -> Path:
    """Create ``path`` (and parents); a directory we create is the owner's only when ``private``."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
    return path


def restrict(path: Path, private: bool = True) -> None:
    """Make a file we wrote readable by its owner only."""
    if private:
        os.chmod(path, 0o600)


@contextlib.contextmanager
def atomic_path(path: Path, *, private: bool = True) -> Iterator[Path]:
    """A ``.partial`` path to write, renamed over ``path`` when done: a reader never sees half a file.

    For a library that writes files itself (pandas, pyarrow); :func:`atomic_write` for text.
    """
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        restrict(partial, private)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def copy_into(source: Path, handle: IO[str]) -> None:
    """Copy a file's bytes into an open text file, by the kernel where it can (no decoding)."""
    handle.flush()
    with source.open("rb") as reader:
        size = os.fstat(reader.fileno()).st_size
        offset = 0
        try:
            while offset < size:
                sent = os.sendfile(handle.fileno(), reader.fileno(), offset, size - offset)
                if sent == 0:
                    break
                offset += sent
        except OSError:  # no sendfile between these files: copy what is left in user space
            reader.seek(offset)
            shutil.copyfileobj(reader, handle.buffer, 1 << 20)  # type: ignore[attr-defined]
    handle.seek(0, os.SEEK_END)


@contextlib.contextmanager
def atomic_write(path: Path, *, private: bool = True) -> Iterator[IO[str]]:
    """Write UTF-8 text to ``path`` whole or not at all, synced to disk before the rename."""
    with atomic_path(path, private=private) as partial:
        # created private from the start, not made private after the data is in it
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


class DataDirLock:
    """An exclusive OS lock on ``<data dir>/.tiktok-lock``, held by this process.

    Re-entrant within the process (the crawl command and the crawl's ledger both
    ask for it); released when the last holder lets go, or when the process dies.
    """

    _held: dict[Path, tuple[IO, int]] = {}  # noqa: RUF012 - one registry per process

    def __init__(self, data_dir: Path) -> None:
        self.path = (data_dir / LOCK_FILENAME).resolve()

    def acquire(self, private: bool = True) -> None:
        held = self._held.get(self.path)
        if held is not None:
            self._held[self.path] = (held[0], held[1] + 1)
            return
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        restrict(self.path, private)
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DataDirBusy(
                f"{self.path.parent} is in use by {holder}: one crawl per data directory at a time "
                "(wait for it to end, or use another TIKTOK_DATA_DIR)"
            )
        handle.seek(0)
        handle.truncate()
        since = datetime.now(UTC).isoformat(timespec="seconds")
        handle.write(f"process {os.getpid()} ({' '.join(sys.argv[:3])}) since {since}\n")
        handle.flush()
        self._held[self.path] = (handle, 1)

    def release(self) -> None:
        held = self._held.get(self.path)
        if held is None:
            return
        handle, count = held
        if count > 1:
            self._held[self.path] = (handle, count - 1)
            return
        del self._held[self.path]
        with contextlib.suppress(OSError):
            handle.truncate(0)
        handle.close()  # closing the descriptor releases the lock


def _try_lock(handle: IO) -> bool:
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
