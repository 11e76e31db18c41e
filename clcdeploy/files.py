"""File helpers shared by every area: content hashes, atomic writes and output folders (no torch, no third-party
imports)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from clcdeploy.errors import OutputFolderError


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's content, read in 1 MiB blocks."""
    return file_digest(path, "sha256")


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file's content with the hashlib `algorithm` (sha256, sha1, md5), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import (setting the umask to read it is not thread-safe): mkstemp creates files readable by
# their owner only, and renaming one into place would keep that, where any other writer gives 0o666 & ~umask.
_FILE_MODE = 0o666 & ~_read_umask()


def temp_path(final: str | os.PathLike) -> Path:
    """A fresh hidden file next to `final` (same file system, so renaming it onto `final` is atomic)."""
    final = Path(final)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.fchmod(fd, _FILE_MODE)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success it replaces `final`, on any failure it is removed
    and `final` is left as it was."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


@contextlib.contextmanager
def output_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Create `folder` and check that files can be written in it, before the work that fills it (one clear
    error instead of a traceback after the work); if the block fails, remove again what this created and left
    empty (the folder, and any parent folders it needed)."""
    created = _make_output_folder(Path(folder))
    try:
        yield Path(folder)
    except BaseException:
        _remove_empty(created)
        raise


def check_output_folder(folder: str | os.PathLike) -> None:
    """`output_folder`'s check alone, leaving nothing it created: for work whose atomic writes create the folder
    at the end, so that a run killed before them (kill -9 too) leaves no empty folder behind."""
    _remove_empty(_make_output_folder(Path(folder)))


def _make_output_folder(folder: Path) -> list[Path]:
    """Create `folder` and probe it; return the folders this created (deepest first). OutputFolderError, with
    nothing left behind, when it cannot be made or written."""
    created = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
    try:
        blocker = next((path for path in (folder, *folder.parents) if path.exists() and not path.is_dir()), None)
        if blocker is not None:
            where = "" if blocker == folder else f" cannot be made: {blocker}"
            raise OutputFolderError(f"output folder {folder}{where} is a file, not a folder: pick another path")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temp_path(folder / "probe").unlink()
        except OSError as exc:
            raise OutputFolderError(f"output folder {folder} is not writable ({exc.strerror or exc})") from None
    except BaseException:
        _remove_empty(created)
        raise
    return created


def _remove_empty(created: list[Path]) -> None:
    for path in created:
        if not path.is_dir() or any(path.iterdir()):
            break
        path.rmdir()
