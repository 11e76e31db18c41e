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
