"""scripts/build_app.sh: without an Android SDK / Gradle it must exit 2 with one line naming what is missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_app.sh"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("ANDROID_HOME", "ANDROID_SDK_ROOT", "GRADLE")}
    base.update({"MODELS_DIR": str(tmp_path / "models"), "GRADLE": "", "CLC_SKIP_NETWORK_CHECK": "1"})
    base.update(env)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=base, timeout=60)


def _export(tmp_path: Path, name: str, *files: str) -> None:
    folder = tmp_path / "models" / name
    folder.mkdir(parents=True)
    for f in files:
        (folder / f).write_text("{}" if f.endswith(".json") else "x")


def _one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_no_models_and_no_sdk(tmp_path: Path) -> None:
    line = _one_line_failure(_run(tmp_path))
    assert "no exported models" in line and "clcdeploy export" in line
    assert "ANDROID_HOME is not set" in line and "platforms;android-35" in line
    assert "Gradle" in line


def test_models_present_but_sdk_platform_missing(tmp_path: Path) -> None:
    _export(tmp_path, "clcnet_a", "manifest.json", "clcnet_a.pte", "clcnet_a.tflite")
    sdk = tmp_path / "sdk"
    (sdk / "build-tools" / "35.0.0").mkdir(parents=True)
    line = _one_line_failure(_run(tmp_path, ANDROID_HOME=str(sdk)))
    assert "exported models" not in line
    assert "SDK platform android-35 is missing" in line
    assert "no build-tools" not in line
    assert "no Gradle wrapper" in line


def test_named_model_without_artifacts(tmp_path: Path) -> None:
    _export(tmp_path, "clcnet_b", "manifest.json")
    line = _one_line_failure(_run(tmp_path, "clcnet_b", "missing_model"))
    assert "has neither clcnet_b.pte nor clcnet_b.tflite" in line
    assert "missing_model/manifest.json is missing" in line


def test_full_sdk_but_no_gradle_names_only_gradle(tmp_path: Path) -> None:
    _export(tmp_path, "clcnet_a", "manifest.json", "clcnet_a.tflite")
    sdk = tmp_path / "sdk"
    (sdk / "platforms" / "android-35").mkdir(parents=True)
    (sdk / "build-tools" / "35.0.0").mkdir(parents=True)
    line = _one_line_failure(_run(tmp_path, ANDROID_HOME=str(sdk)))
    problems = [p for p in line.split(": ", 1)[1].split("; ") if "java" not in p]  # a JDK may be absent in CI
    assert len(problems) == 1 and "no Gradle wrapper" in problems[0], line
    assert not (ROOT / "android_app" / "app" / "src" / "main" / "assets" / "models" / "clcnet_a").exists()
