"""Writing an export into its folder: one export per folder at a time, whose first steps roll back a commit that a
killed export left unfinished and remove what it left staged; refuse paths a file cannot replace before the work
starts, then put the staged artifacts and the manifest in place all or nothing, so a failure keeps the previous
export, and so does a kill (the commit's journal tells the next export what to put back)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from clcdeploy.errors import ExportError, first_line
from clcdeploy.export.manifest import MANIFEST_NAME, Manifest, write_manifest
from clcdeploy.files import write_atomic
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


# Lists, while a commit runs, what it moved aside and what it added; its removal is the commit point.
JOURNAL_NAME = ".export-journal.json"


def commit(folder: Path, moves: dict[Path, Path], manifest: Manifest, stale: list[Path]) -> None:
    """Rename each staged file onto its final path, write the manifest and remove `stale`, all or nothing: what
    they replace is first moved aside, and put back if any step fails. The journal, written before the first
    rename, lets `recover_interrupted_commit` put it back after a kill."""
    manifest_path = folder / MANIFEST_NAME
    token = secrets.token_hex(4)
    aside = {path: path.with_name(f".{path.name}.aside-{token}.tmp")
             for path in [manifest_path, *moves.values(), *stale] if os.path.lexists(path)}
    added = [path for path in [*moves.values(), manifest_path] if path not in aside]
    journal = folder / JOURNAL_NAME
    try:
        write_atomic(journal, json.dumps({"aside": {path.name: backup.name for path, backup in aside.items()},
                                          "added": [path.name for path in added]}, indent=1))
        for path, backup in aside.items():
            os.replace(path, backup)
        for tmp, final in moves.items():
            os.replace(tmp, final)
        write_manifest(folder, manifest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            _roll_back(aside, added)
            journal.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            cause = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else first_line(exc)
            raise ExportError(f"could not write the export into {folder} ({cause}); the previous export there is "
                              f"kept") from exc
        raise
    journal.unlink()  # the commit point: from here on the new export stands
    for backup in aside.values():
        backup.unlink(missing_ok=True)


def recover_interrupted_commit(folder: Path) -> bool:
    """If an export was killed during its commit in `folder`, put the previous export back as the commit would
    have on a failure, and return True. Only safe under `export_lock`, and before `remove_leftovers`, which would
    remove what was moved aside."""
    journal = folder / JOURNAL_NAME
    if not journal.is_file():
        return False
    try:
        entries = json.loads(journal.read_text())
        names = [*entries["aside"], *entries["aside"].values(), *entries["added"]]
        if not all(isinstance(name, str) and name == Path(name).name and name not in ("", ".", "..")
                   for name in names):
            raise ValueError("a name in it is not a file name in the folder")
        aside = {folder / path: folder / backup for path, backup in entries["aside"].items()}
        added = [folder / path for path in entries["added"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ExportError(f"{journal} (left by an export killed while putting its files in place) cannot be read "
                          f"({first_line(exc)}): remove it, and check the model's files, then export again") from None
    try:
        _roll_back(aside, added)
        journal.unlink()
    except OSError as exc:
        raise ExportError(f"could not put back the previous export in {folder} ({exc.filename}: {exc.strerror}), "
                          f"as {journal} asks: fix that and export again") from None
    return True


def _roll_back(aside: dict[Path, Path], added: list[Path]) -> None:
    """Undo a commit that moved `aside` (final path -> where it was moved) and placed `added`, however far it got."""
    for path in added:
        path.unlink(missing_ok=True)
    for path, backup in aside.items():
        if os.path.lexists(backup):
            os.replace(backup, path)
