"""Re-exports into a folder: the manifest keeps what still describes its files and nothing else is left beside it;
what is in the way is refused before any work; a commit that fails keeps the previous export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clcdeploy.cli import main
from clcdeploy.errors import ExportError
from clcdeploy.export.commit import JOURNAL_NAME, commit, recover_interrupted_commit, remove_leftovers
from clcdeploy.export.manifest import read_manifest
from clcdeploy.files import temp_path


def _export(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, list[str]]:
    code = main(["export", *argv])
    return code, capsys.readouterr().err.strip().splitlines()


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_reexporting_one_format_keeps_the_others_of_a_model_with_tuples_and_int_keys_in_its_config(
        capsys, tmp_path: Path) -> None:
    """sic_i_tiny's config has tuples and a topology dict with integer keys, which JSON turns into lists and
    strings."""
    assert _export(capsys, "sic_i_tiny", "--formats", "onnx", "--out", str(tmp_path))[0] == 0
    assert _export(capsys, "sic_i_tiny", "--formats", "tflite", "--out", str(tmp_path))[0] == 0
    manifest = json.loads((tmp_path / "sic_i_tiny" / "manifest.json").read_text())
    assert list(manifest["formats"]) == ["onnx", "tflite"]


def test_a_reexport_that_does_not_merge_removes_the_other_formats_files(capsys, tmp_path: Path) -> None:
    assert _export(capsys, "clcnet_tiny", "--formats", "onnx,tflite", "--out", str(tmp_path))[0] == 0
    code, err = _export(capsys, "clcnet_tiny", "--formats", "onnx", "--input-size", "48", "--out", str(tmp_path))
    folder = tmp_path / "clcnet_tiny"
    assert code == 0 and sorted(p.name for p in folder.iterdir()) == ["clcnet_tiny.onnx", "manifest.json"]
    assert f"  removed stale {folder / 'clcnet_tiny.tflite'} (exported for another configuration)" in err
    assert list(json.loads((folder / "manifest.json").read_text())["formats"]) == ["onnx"]


def test_a_directory_where_an_artifact_goes_is_refused_before_any_work_and_keeps_the_previous_export(
        capsys, tmp_path: Path) -> None:
    assert _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))[0] == 0
    folder = tmp_path / "clcnet_tiny"
    before = _contents(folder)
    (folder / "clcnet_tiny.tflite").mkdir()
    code, err = _export(capsys, "clcnet_tiny", "--formats", "onnx,tflite", "--input-size", "40", "--out",
                        str(tmp_path))
    assert code == 2 and not any("onnx export" in line for line in err), err
    assert f"{folder / 'clcnet_tiny.tflite'} is in the way" in err[-1] and "remove it" in err[-1]
    assert _contents(folder) == before


@pytest.mark.parametrize("blocker", ["manifest.json", "clcnet_tiny.onnx"])
def test_a_directory_where_a_file_goes_in_a_new_folder_is_refused(capsys, tmp_path: Path, blocker: str) -> None:
    (tmp_path / "clcnet_tiny" / blocker).mkdir(parents=True)
    code, err = _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))
    assert code == 2 and f"{blocker} is in the way" in err[-1]
    assert [p.name for p in (tmp_path / "clcnet_tiny").iterdir()] == [blocker]


def test_a_commit_that_fails_halfway_puts_the_previous_export_back(capsys, tmp_path: Path) -> None:
    assert _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))[0] == 0
    folder = tmp_path / "clcnet_tiny"
    before = _contents(folder)
    onnx = temp_path(folder / "clcnet_tiny.onnx")
    onnx.write_bytes(b"new onnx")
    vanished = folder / ".clcnet_tiny.tflite.vanished.tmp"  # the second rename fails, after the first
    with pytest.raises(ExportError, match="could not write the export into .*; the previous export there is kept"):
        commit(folder, {onnx: folder / "clcnet_tiny.onnx", vanished: folder / "clcnet_tiny.tflite"},
                read_manifest(folder), [])
    assert _contents(folder) == before


@pytest.mark.parametrize("text", ['{"formats": []}', "[]", '{"formats": {"onnx": 3}}', "not json"])
def test_a_malformed_manifest_reads_as_none(tmp_path: Path, text: str) -> None:
    (tmp_path / "manifest.json").write_text(text)
    assert read_manifest(tmp_path) is None


def test_a_manifest_with_fields_of_the_wrong_type_reads_as_none(capsys, tmp_path: Path) -> None:
    assert _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))[0] == 0
    path = tmp_path / "clcnet_tiny" / "manifest.json"
    assert read_manifest(path.parent) is not None
    manifest = json.loads(path.read_text())
    manifest["formats"]["onnx"]["extra"] = []
    path.write_text(json.dumps(manifest))
    assert read_manifest(path.parent) is None


def test_a_malformed_previous_manifest_is_overwritten_and_its_artifacts_removed(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "clcnet_tiny"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"formats": []}')
    (folder / "clcnet_tiny.tflite").write_bytes(b"of unknown configuration")
    code, err = _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))
    assert code == 0, err
    assert list(json.loads((folder / "manifest.json").read_text())["formats"]) == ["onnx"]
    assert sorted(p.name for p in folder.iterdir()) == ["clcnet_tiny.onnx", "manifest.json"]
    assert f"  removed stale {folder / 'clcnet_tiny.tflite'} (no readable manifest described it)" in err


@pytest.mark.parametrize("out, shown", [("", "clcnet_tiny/manifest.json"),
                                        ("trail/", "trail/clcnet_tiny/manifest.json")])
def test_the_report_shows_the_manifest_path_as_written(capsys, tmp_path: Path, monkeypatch, out: str,
                                                       shown: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", out)
    assert code == 0 and err[-1] == f"  wrote {shown}"


def test_files_a_killed_export_left_staged_are_removed_and_named(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "clcnet_tiny"
    folder.mkdir()
    leftovers = [folder / ".clcnet_tiny.pte.k1ll3d_x.tmp", folder / ".manifest.json.a8c_2z9q.tmp"]
    kept = [folder / ".notes.tmp", folder / ".other.onnx.k1ll3d_x.tmp", folder / "clcnet_tiny.onnx.tmp"]
    for path in leftovers + kept:
        path.write_bytes(b"x")
    code, err = _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))
    assert code == 0, err
    assert [line for line in err if "interrupted" in line] == [
        f"  removed {path}, left staged by an interrupted export" for path in leftovers]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["clcnet_tiny.onnx", "manifest.json",
                                                               *(p.name for p in kept)])


def test_an_export_into_a_folder_another_export_is_writing_is_refused(capsys, tmp_path: Path) -> None:
    """This test holds the folder's lock as a running export would."""
    import os

    from clcdeploy.export.commit import export_lock

    assert _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))[0] == 0
    folder = tmp_path / "clcnet_tiny"
    before = _contents(folder)
    with export_lock(tmp_path / "." / "clcnet_tiny"):  # the same folder, spelled differently
        code, err = _export(capsys, "clcnet_tiny", "--formats", "onnx,tflite", "--out", str(tmp_path))
    assert code == 2 and err[-1] == (f"clcdeploy export: error: another clcdeploy export (pid {os.getpid()}) is "
                                     f"writing {folder}: wait for it to finish"), err
    assert _contents(folder) == before
    assert _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))[0] == 0


# Run in a child process: commit a new export (a changed ONNX file, a new TFLite file, a new manifest) into the
# folder argv[1], killing itself with SIGKILL right after its os.replace number argv[2] (0: never).
_KILLED_COMMIT = """
import os, signal, sys
from pathlib import Path
from clcdeploy.export.commit import commit
from clcdeploy.export.manifest import read_manifest
from clcdeploy.files import temp_path

folder, kill_after = Path(sys.argv[1]), int(sys.argv[2])
real_replace, calls = os.replace, []
def replace(src, dst):
    real_replace(src, dst)
    calls.append(dst)
    if len(calls) == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
staged = {}
for name, data in (("clcnet_tiny.onnx", b"new onnx"), ("clcnet_tiny.tflite", b"new tflite")):
    staged[temp_path(folder / name)] = folder / name
    next(reversed(staged)).write_bytes(data)
manifest = read_manifest(folder)
manifest.model = "the new export"
commit(folder, staged, manifest, [])
"""


def _killed_commit(folder: Path, kill_after: int) -> int:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", _KILLED_COMMIT, str(folder), str(kill_after)]).returncode


def test_a_commit_killed_after_any_of_its_renames_is_rolled_back_by_the_next_export(capsys, tmp_path: Path) -> None:
    """A commit renames six times: its journal, the old manifest and ONNX file aside, the new ONNX and TFLite
    files into place, the new manifest; killed after any of them, the next export finds the previous export."""
    import signal

    assert _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))[0] == 0
    folder = tmp_path / "clcnet_tiny"
    before = _contents(folder)
    for kill_after in range(1, 7):
        assert _killed_commit(folder, kill_after) == -signal.SIGKILL
        assert _contents(folder) != before  # what the kill left: a journal, moved-aside or new files
        assert recover_interrupted_commit(folder) is True, kill_after
        remove_leftovers(folder, ["clcnet_tiny.onnx", "clcnet_tiny.tflite"])  # the staged files, as export does
        assert _contents(folder) == before, kill_after
        assert recover_interrupted_commit(folder) is False
    assert _killed_commit(folder, 1) == -signal.SIGKILL
    code, err = _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))
    assert code == 0 and f"  put back the previous export in {folder}: an export was killed while putting its " \
                          f"files in place" in err, err
    assert sorted(_contents(folder)) == ["clcnet_tiny.onnx", "manifest.json"]


def test_a_commit_that_is_not_killed_leaves_the_new_export_and_no_journal(capsys, tmp_path: Path) -> None:
    assert _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))[0] == 0
    folder = tmp_path / "clcnet_tiny"
    assert _killed_commit(folder, 0) == 0
    files = _contents(folder)
    assert sorted(files) == ["clcnet_tiny.onnx", "clcnet_tiny.tflite", "manifest.json"]
    assert files["clcnet_tiny.onnx"] == b"new onnx" and read_manifest(folder).model == "the new export"
    assert recover_interrupted_commit(folder) is False


@pytest.mark.parametrize("journal", ["not json", '{"aside": {"../../x": "y"}, "added": []}', '{"aside": []}'])
def test_an_unreadable_commit_journal_stops_the_export_with_one_line(capsys, tmp_path: Path, journal: str) -> None:
    folder = tmp_path / "clcnet_tiny"
    folder.mkdir()
    (folder / JOURNAL_NAME).write_text(journal)
    code, err = _export(capsys, "clcnet_tiny", "--formats", "onnx", "--out", str(tmp_path))
    assert code == 2 and err[-1].startswith("clcdeploy export: error: ") and len(err) == 2, err
    assert f"{folder / JOURNAL_NAME} (left by an export killed" in err[-1]
    assert err[-1].endswith("remove it, and check the model's files, then export again")
    assert sorted(p.name for p in folder.iterdir()) == [JOURNAL_NAME]
