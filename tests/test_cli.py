"""The command line as a whole: usage mistakes, --debug placement, termination by signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def clcdeploy(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clcdeploy", *args], capture_output=True, text=True, timeout=600,
                          **kwargs)


@pytest.mark.parametrize("args, message", [
    (("bench", "--runs", "abc"), "clcdeploy bench: error: argument --runs: invalid int value: 'abc' "
                                 "(see `clcdeploy bench --help`)"),
    (("groups", "--in", "8.5", "--mid", "8", "--out", "8"), "clcdeploy groups: error: argument --in: invalid int"),
    (("export", "clcnet_tiny", "--topological", "foo"), "clcdeploy export: error: argument --topological: invalid"),
    (("frobnicate",), "clcdeploy: error: argument COMMAND: invalid choice: 'frobnicate'"),
    # an argument the command does not take points to that command's help, not the top level's
    (("analyze", "clcnet_a", "clcnet_b"), "clcdeploy analyze: error: unrecognized arguments: clcnet_b "
                                          "(see `clcdeploy analyze --help`)"),
    (("device", "status", "extra"), "clcdeploy device status: error: unrecognized arguments: extra "
                                    "(see `clcdeploy device status --help`)"),
    (("--frobnicate", "models"), "clcdeploy: error: unrecognized arguments: --frobnicate (see `clcdeploy --help`)"),
])
def test_usage_mistakes_are_one_line_exit_2(args, message):
    result = clcdeploy(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_debug_goes_before_or_after_the_command():
    for args in (("--debug", "groups", "--in", "0", "--mid", "8", "--out", "8"),
                 ("groups", "--in", "0", "--mid", "8", "--out", "8", "--debug")):
        result = clcdeploy(*args)
        assert result.returncode == 1 and "Traceback" in result.stderr, result.stderr  # the full traceback
    plain = clcdeploy("groups", "--in", "0", "--mid", "8", "--out", "8")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminated_export_leaves_nothing_behind(tmp_path: Path, signum):
    """As Ctrl-C does: the staged temporary files and the folder the export created are removed."""
    out = tmp_path / "models"
    proc = subprocess.Popen([sys.executable, "-m", "clcdeploy", "export", "clcnet_tiny", "--formats", "onnx,pte",
                             "--out", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("clcnet_tiny/.*.tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the export ended before it staged a file"
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines()[-1] == f"clcdeploy export: terminated ({signal.Signals(signum).name})"
    assert not out.exists(), list(out.rglob("*"))


def test_output_cut_short_by_its_reader_is_no_error():
    """`clcdeploy device facts | head -1`: no traceback when the reader stops early (`true` reads nothing and
    exits while clcdeploy still starts, so its first write meets a closed pipe)."""
    result = subprocess.run(["bash", "-c", f"{sys.executable} -m clcdeploy device facts | true; "
                                           f"echo ${{PIPESTATUS[0]}}"], capture_output=True, text=True, timeout=600)
    assert result.stderr == "" and result.stdout.strip() == str(128 + signal.SIGPIPE), result.stderr


@pytest.mark.parametrize("args", [("models", "--json"), ("models",), ("groups", "--in", "8", "--mid", "8", "--out", "8")])
def test_output_that_cannot_be_written_is_one_line_exit_2(args):
    """`clcdeploy models --json > /dev/full`: ENOSPC on stdout is the user's to fix, so one line and exit 2."""
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "clcdeploy", *args], stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=600)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"clcdeploy {args[0]}: error: cannot write the output: "), lines
