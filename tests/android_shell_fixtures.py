"""A stand-in for the Android shell tools the demo-app runner drives (`pm`, `am`, `run-as`, `pidof`, `input`,
`wm`), first on the PATH the host device's shell inherits. Android cannot run here, so these scripts act as the
installed demo app would: `am start` writes the result JSON the app writes (app_result.schema.json), in the way
the test asks for in `$FAKE_ANDROID/mode`: ok, error (status error), stale (another run's id) or crash (no
result, no process). Every call is logged to `$FAKE_ANDROID/calls.log`."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

# The test process's PATH, read when this module is imported, before a fixture gives the device shells a phone's
# PATH: a test restores it for the harness (which builds on this host) once its device has started.
HOST_PATH = os.environ["PATH"]

_AM = r'''
import json, os, sys
from pathlib import Path
home = Path(os.environ["FAKE_ANDROID"])
args = sys.argv[1:]
with open(home / "calls.log", "a") as log:
    log.write("am " + " ".join(args) + "\n")
if args[:1] != ["start"]:
    sys.exit(0)  # force-stop
extras = {args[i + 1]: args[i + 2] for i, a in enumerate(args) if a in ("--es", "--ei", "--eia")}
mode = (home / "mode").read_text().strip()
print("Starting: Intent { cmp=org.clcdeploy.demo/.BenchmarkActivity (has extras) }")
print("Status: ok")
if mode == "crash":
    sys.exit(0)
iterations = int(extras["iterations"])
result = {
    "schema_version": 1, "run_id": "another-run" if mode == "stale" else extras.get("run_id"),
    "status": "error" if mode == "error" else "ok",
    "error": "ExecuTorch has no native library for this device's ABIs" if mode == "error" else None,
    "model": extras["model_path"], "runtime": extras["runtime"], "threads": 4,
    "runtime_library": {"pte": "org.pytorch:executorch-android:1.5.1",
                        "tflite": "com.google.ai.edge.litert:litert:1.4.2"}[extras["runtime"]], "warmup": int(extras["warmup"]),
    "iterations": iterations, "load_ms": None if mode == "error" else 12.5,
    "times_ms": [] if mode == "error" else [10.0 + i for i in range(iterations)],
    "device": {"manufacturer": "Fake", "model": "Phone", "hardware": "mt6580", "abis": ["arm64-v8a"],
               "process_64bit": True, "sdk_int": 34, "release": "14", "cores": 8, "total_mem_mb": 2048.0},
}
files = home / "data" / "files"
files.mkdir(parents=True, exist_ok=True)
(files / "benchmark_result.json").write_text(json.dumps(result))
'''

_SCRIPTS = {
    "am": f"#!{sys.executable}\n{_AM}",
    "pm": '#!/bin/sh\n[ "$1" = path ] && echo "package:/data/app/org.clcdeploy.demo-1/base.apk"\nexit 0\n',
    "run-as": '#!/bin/sh\ncd "$FAKE_ANDROID/data" || exit 1\nshift\nexec "$@"\n',
    "pidof": '#!/bin/sh\n[ "$(cat "$FAKE_ANDROID/mode")" = crash ] && exit 1\necho 4242\n',
    "input": "#!/bin/sh\nexit 0\n",
    "wm": "#!/bin/sh\nexit 0\n",
}


@pytest.fixture
def fake_android(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder holding `mode` (write it before the bench) and `calls.log`."""
    home = tmp_path / "fake-android"
    bin_dir = home / "bin"
    (home / "data").mkdir(parents=True)
    bin_dir.mkdir()
    (home / "mode").write_text("ok")
    for name, text in _SCRIPTS.items():
        if text.startswith("#!/bin/sh"):  # log the call after the #! line (am logs itself)
            text = text.replace("\n", f'\necho "{name} $*" >> "$FAKE_ANDROID/calls.log"\n', 1)
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("FAKE_ANDROID", str(home))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return home


# The commands of Android 5.1's /system/bin that the harness uses (toolbox; no toybox before Android 6, so no
# pidof, taskset, uname, nproc or sha*sum), taken from the host; `ps`, `getprop` and `md5` act as toolbox's.
TOOLBOX = ("cat", "chmod", "grep", "ls", "mkdir", "rm", "sleep")
_TOOLBOX_STUBS = {
    # toolbox ps: `ps NAME` lists the processes of that name, after a header; exit 0 even when none match
    "ps": '#!/bin/sh\necho "ps $*" >> "$FAKE_ANDROID/calls.log"\n'
          'echo "USER     PID   PPID  VSIZE  RSS     WCHAN    PC         NAME"\n'
          '[ "$(cat "$FAKE_ANDROID/mode")" = crash ] && exit 0\n'
          '[ -z "$1" ] || [ "$1" = org.clcdeploy.demo ] && '
          'echo "u0_a64    4242  1234  1034876 61236 ffffffff 00000000 S org.clcdeploy.demo"\nexit 0\n',
    "getprop": '#!/bin/sh\ncase "$1" in\n  ro.product.cpu.abi) echo armeabi-v7a ;;\n'
               '  ro.product.cpu.abilist) echo armeabi-v7a,armeabi ;;\n'
               '  ro.build.version.sdk) echo 22 ;;\n  ro.build.version.release) echo 5.1 ;;\n'
               '  ro.product.model) echo "Advance 5.2" ;;\n  ro.hardware) echo mt6580 ;;\n  *) echo ;;\nesac\n',
    "md5": '#!/bin/sh\nexec MD5SUM "$@"\n',  # toolbox md5 prints what md5sum prints
}


@pytest.fixture
def android_5_shell(fake_android: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """fake_android on a PATH of Android 5.1's commands only (the stand-ins and TOOLBOX): no pidof, no taskset.
    Returns the fake_android folder."""
    import shutil

    bin_dir = fake_android / "bin"
    (bin_dir / "pidof").unlink()
    for name, text in _TOOLBOX_STUBS.items():
        path = bin_dir / name
        path.write_text(text.replace("MD5SUM", shutil.which("md5sum")))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    _phone_path(fake_android, TOOLBOX, monkeypatch)
    return fake_android


def _phone_path(fake_android: Path, commands: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell's PATH: the stand-ins, then the host's `commands` (nothing else)."""
    import shutil

    system = fake_android / "system-bin"
    system.mkdir()
    for name in commands:
        (system / name).symlink_to(shutil.which(name))
    monkeypatch.setenv("PATH", f"{fake_android / 'bin'}{os.pathsep}{system}")


# An arm64 phone (toybox: sha256sum, taskset, nproc, pidof), the shell tools the harness uses there; its Android
# version is the SDK level in $FAKE_ANDROID/sdk (29, Android 10, unless the test writes another).
TOYBOX = (*TOOLBOX, "sha256sum", "taskset", "nproc")
_ARM64_GETPROP = ('#!/bin/sh\ncase "$1" in\n  ro.product.cpu.abi) echo arm64-v8a ;;\n'
                  '  ro.product.cpu.abilist) echo arm64-v8a,armeabi-v7a,armeabi ;;\n'
                  '  ro.build.version.sdk) cat "$FAKE_ANDROID/sdk" ;;\n'
                  '  ro.build.version.release) [ "$(cat "$FAKE_ANDROID/sdk")" = 23 ] && echo 6.0 || echo 10 ;;\n'
                  '  ro.product.model) echo "Phone 64" ;;\n  *) echo ;;\nesac\n')


@pytest.fixture
def android_arm64_shell(fake_android: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """fake_android (the demo app installed) on a PATH of an arm64 phone's commands only: no python3, no glibc
    programs. Returns the fake_android folder."""
    (fake_android / "sdk").write_text("29")
    getprop = fake_android / "bin" / "getprop"
    getprop.write_text(_ARM64_GETPROP.replace("$FAKE_ANDROID", str(fake_android)))  # a pty shell has no env
    getprop.chmod(0o755)
    _phone_path(fake_android, TOYBOX, monkeypatch)
    return fake_android
