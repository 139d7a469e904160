"""Files of a data directory: private, atomic, never through a link, one writer at a time.

TikTok's terms oblige researchers to keep collected data secure, so the data
directory is created ``0700`` and every file in it ``0600`` unless
``TIKTOK_PRIVATE_FILES`` is false.  Every file we write goes to a ``.partial`` file
first, created exclusively and never through a symbolic link, and is then renamed
over its name, so a reader never sees half of one and a link planted where a file
should be is never written through (:func:`check_no_links` refuses it, naming it,
before a command starts).  A data directory is used by one command at a time: an OS
file lock, which a crashed process cannot leave behind, holding the process id and
when it started, never its arguments (which may hold a secret).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from tiktok_spiders import clock

LOCK_FILENAME = ".tiktok-lock"
PARTIAL = ".partial"
#: Open for writing a file that must be ours: never through a link, never one that is there already.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


class DataDirBusy(RuntimeError):
    """Another command is using the data directory."""


class LinkInTheWay(OSError):
    """A symbolic link where the tool writes a file: refused, never followed."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is a symbolic link: the tool never writes through one (it could overwrite any file the link "
            "points at). Remove it, or use another TIKTOK_DATA_DIR"
        )


def keep_private(private: bool = True) -> None:
    """Files that libraries create for us (DuckDB's database, SQLite's journals) private too: the
    process's umask, for a command that writes a data directory."""
    if private:
        os.umask(0o077)


def make_dir(path: Path, private: bool = True) -> Path:
    """Create ``path`` (and parents); a directory we create is the owner's only when ``private``."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
    return path


def restrict(path: Path, private: bool = True) -> None:
    """Make a file we wrote readable by its owner only; never through a link."""
    if not private:
        return
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        if path.is_symlink():
            raise LinkInTheWay(path) from None
        raise error from None
    try:
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


def create_private(path: Path, private: bool = True) -> int:
    """A new file at ``path``, opened for writing: created here (a stale one of a killed run is
    removed first), never through a link, ``0600`` from the start when ``private``."""
    if path.is_symlink():
        raise LinkInTheWay(path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a partial file a killed run left behind
    try:
        return os.open(path, _CREATE, 0o600 if private else 0o666)
    except OSError:
        if path.is_symlink():  # planted between the check and the open
            raise LinkInTheWay(path) from None
        raise


def _replace(partial: Path, path: Path) -> None:
    if path.is_symlink():
        raise LinkInTheWay(path)
    os.replace(partial, path)  # a rename replaces the name, never what a link points at


@contextlib.contextmanager
def atomic_path(path: Path, *, private: bool = True) -> Iterator[Path]:
    """A ``.partial`` path to write, renamed over ``path`` when done: a reader never sees half a file.

    For a library that writes files itself (pandas, pyarrow): the partial file is created
    here first, private and not through a link, and the library writes into it.
    :func:`atomic_write` for text.
    """
    partial = path.with_name(path.name + PARTIAL)
    os.close(create_private(partial, private))
    try:
        yield partial
        restrict(partial, private)
        _replace(partial, path)
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
    partial = path.with_name(path.name + PARTIAL)
    descriptor = create_private(partial, private)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def partial_files(directory: Path) -> list[Path]:
    """The ``.partial`` files a killed run left in ``directory`` (links included: never followed)."""
    if not directory.is_dir() or directory.is_symlink():
        return []
    return sorted(path for path in directory.iterdir() if path.name.endswith(PARTIAL))


def remove_tree(path: Path) -> int:
    """Remove a directory we made (a link in its place is removed, not followed); 1 if it was there."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return 1
    if path.is_dir():
        shutil.rmtree(path)
        return 1
    return 0


def check_no_links(data_dir: Path, names: Iterable[str]) -> None:
    """A data directory whose ``names`` (relative paths the tool writes) include a symbolic link is
    refused before anything is written: :class:`LinkInTheWay` names it."""
    for name in names:
        path = data_dir / name
        if path.is_symlink():
            raise LinkInTheWay(path)
    paths = [data_dir / name for name in names]
    directories = {data_dir, *(path.parent for path in paths), *(path for path in paths if path.is_dir())}
    for directory in sorted(directories):
        for partial in partial_files(directory):
            if partial.is_symlink():
                raise LinkInTheWay(partial)


class DataDirLock:
    """An exclusive OS lock on ``<data dir>/.tiktok-lock``, held by this process.

    Taken once per command (a crawl's components share the ledger its command
    opened): a second holder, even in the same process, finds the directory busy.
    Released when the holder lets go, or when the process dies.  The file says
    which process holds it and since when: never its command line, which may hold
    a secret (``-s TIKTOK_CLIENT_SECRET=…``).
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir.resolve() / LOCK_FILENAME
        self._handle: IO | None = None

    def acquire(self, private: bool = True) -> None:
        if self.path.is_symlink():
            raise LinkInTheWay(self.path)
        try:
            descriptor = os.open(
                self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600 if private else 0o666
            )
        except OSError:
            if self.path.is_symlink():
                raise LinkInTheWay(self.path) from None
            raise
        if private:
            os.fchmod(descriptor, 0o600)
        handle = os.fdopen(descriptor, "r+", encoding="utf-8")
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DataDirBusy(
                f"{self.path.parent} is in use by {holder}: one command per data directory at a time "
                "(wait for it to end, or use another TIKTOK_DATA_DIR)"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} since {clock.stamp()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        with contextlib.suppress(OSError):
            handle.truncate(0)
        handle.close()  # closing the descriptor releases the lock

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


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
