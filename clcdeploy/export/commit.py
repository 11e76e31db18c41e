"""Writing an export into its folder: refuse paths a file cannot replace before the work starts, then put the
staged artifacts and the manifest in place all or nothing, so a failure keeps the previous export."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from clcdeploy.errors import ExportError, first_line
from clcdeploy.export.manifest import MANIFEST_NAME, Manifest, write_manifest
from clcdeploy.files import temp_path


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
