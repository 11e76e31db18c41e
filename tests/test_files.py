"""Atomic writes: readers see the old file or the whole new one, with the permissions any other writer gives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clcdeploy.errors import OutputFolderError
from clcdeploy.files import atomic_path, check_output_folder, output_folder, write_atomic


def test_written_files_get_the_umask_mode_not_mkstemps_private_one(tmp_path: Path) -> None:
    reference = tmp_path / "plain.txt"
    reference.write_text("x")  # created the ordinary way: 0o666 & ~umask
    write_atomic(tmp_path / "atomic.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(reference).st_mode)
    assert mode & 0o044, "group and others cannot read the file (umask allows it)"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.parametrize("where", ["the folder", "a parent"])
def test_an_output_folder_blocked_by_a_file_says_so(tmp_path: Path, where) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("")
    folder = blocker if where == "the folder" else blocker / "run1"
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        with output_folder(folder):
            pass


def test_an_output_folder_that_cannot_be_made_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(OutputFolderError, match="is not writable"):
        with output_folder(Path("/proc/clcdeploy-results")):  # /proc takes no new folders, even from root
            pass


def test_checking_an_output_folder_leaves_nothing_behind(tmp_path: Path) -> None:
    check_output_folder(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "blocker").write_text("")
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "blocker" / "b")
