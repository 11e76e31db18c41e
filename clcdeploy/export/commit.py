"""Writing an export into its folder: one export per folder at a time, whose first step removes what a killed
export left staged there; refuse paths a file cannot replace before the work starts, then put the staged artifacts
and the manifest in place all or nothing, so a failure keeps the previous export."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from clcdeploy.errors import ExportError, first_line
from clcdeploy.export.manifest import MANIFEST_NAME, Manifest, write_manifest
from clcdeploy.files import temp_path
from clcdeploy.locks import exclusive


@contextlib.contextmanager
def export_lock(folder: Path) -> Iterator[None]:
    """Hold this host's lock on the model folder `folder` while the block runs (two exports into one folder
    would replace each other's files); ExportError at once if another process holds it."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    with exclusive(f"export-{folder.name}-{key}", ExportError, lambda holder: (
            f"another clcdeploy export (pid {holder}) is writing {folder}: wait for it to finish")):
        yield


def remove_leftovers(folder: Path, names: Sequence[str]) -> list[Path]:
    """Remove the staged files (`.NAME.*.tmp`, see `files.temp_path`) of the files `names` that an export killed
    before its cleanup left in `folder`, and return them. Only safe under `export_lock`, where no export is
    staging them."""
    if not folder.is_dir():
        return []
    prefixes = tuple(f".{name}." for name in names)
    leftovers = sorted(path for path in folder.iterdir()
                       if path.name.startswith(prefixes) and path.name.endswith(".tmp") and not path.is_dir())
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def check_targets(paths: Sequence[Path]) -> None:
    """Refuse to start an export whose files could not replace what is at their paths (a directory, say)."""
    for path in paths:
        if path.exists() and not path.is_symlink() and not path.is_file():
            raise ExportError(f"{path} is in the way: it is a directory or other non-regular file where the export "
                              f"writes a file; remove it and export again")


def commit(folder: Path, moves: dict[Path, Path], manifest: Manifest, stale: list[Path]) -> None:
    """Rename each staged file onto its final path, write the manifest and remove `stale`, all or nothing: what
    they replace is first moved aside, and put back if any step fails."""
    aside: dict[Path, Path] = {}
    placed: list[Path] = []
    try:
        for path in [folder / MANIFEST_NAME, *moves.values(), *stale]:
            if os.path.lexists(path):
                backup = temp_path(path)
                try:
                    os.replace(path, backup)
                except OSError:
                    backup.unlink()
                    raise
                aside[path] = backup
        for tmp, final in moves.items():
            os.replace(tmp, final)
            placed.append(final)
        write_manifest(folder, manifest)
    except BaseException as exc:
        for path in placed:
            path.unlink(missing_ok=True)
        for path, backup in aside.items():
            with contextlib.suppress(OSError):
                os.replace(backup, path)
        if isinstance(exc, OSError):
            cause = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else first_line(exc)
            raise ExportError(f"could not write the export into {folder} ({cause}); the previous export there is "
                              f"kept") from exc
        raise
    for backup in aside.values():
        backup.unlink(missing_ok=True)
