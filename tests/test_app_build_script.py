"""scripts/build_app.sh: without an Android SDK / Gradle it must exit 2 with one line naming what is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """scripts/build_app.sh and android_app/ as committed, in a folder of their own: none of a developer's build
    (Gradle wrapper, local.properties, bundled assets) is seen, and nothing the script writes lands in the repo."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "build_app.sh", root / "scripts")
    shutil.copytree(ROOT / "android_app", root / "android_app", ignore=shutil.ignore_patterns(
        ".gradle", "build", "local.properties", ".idea", "*.iml", "gradlew", "gradlew.bat", "gradle-wrapper.jar",
        "assets"))  # what android_app/.gitignore lists (a build's leftovers; the app commits no assets)
    if (ROOT / ".venv").is_dir():
        (root / ".venv").symlink_to(ROOT / ".venv")  # the script's first choice of Python
    return root


def _assets(checkout: Path) -> Path:
    return checkout / "android_app" / "app" / "src" / "main" / "assets"


def _run(tmp_path: Path, checkout: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("ANDROID_HOME", "ANDROID_SDK_ROOT", "GRADLE")}
    base.update({"MODELS_DIR": str(tmp_path / "models"), "GRADLE": "", "CLC_SKIP_NETWORK_CHECK": "1"})
    base.update(env)
    return subprocess.run(["bash", str(checkout / "scripts" / "build_app.sh"), *args], capture_output=True,
                          text=True, env=base, timeout=60)


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


def test_no_models_and_no_sdk(tmp_path: Path, checkout: Path) -> None:
    line = _one_line_failure(_run(tmp_path, checkout))
    assert "no exported models" in line and "clcdeploy export" in line
    assert "ANDROID_HOME is not set" in line and "platforms;android-35" in line
    assert "Gradle" in line


def test_models_present_but_sdk_platform_missing(tmp_path: Path, checkout: Path) -> None:
    _export(tmp_path, "clcnet_a", "manifest.json", "clcnet_a.pte", "clcnet_a.tflite")
    sdk = tmp_path / "sdk"
    (sdk / "build-tools" / "35.0.0").mkdir(parents=True)
    line = _one_line_failure(_run(tmp_path, checkout, ANDROID_HOME=str(sdk)))
    assert "exported models" not in line
    assert "SDK platform android-35 is missing" in line
    assert "no build-tools" not in line
    assert "no Gradle wrapper" in line


def test_named_model_without_artifacts(tmp_path: Path, checkout: Path) -> None:
    _export(tmp_path, "clcnet_b", "manifest.json")
    line = _one_line_failure(_run(tmp_path, checkout, "clcnet_b", "missing_model"))
    assert "has neither clcnet_b.pte nor clcnet_b.tflite" in line
    assert "missing_model/manifest.json is missing" in line


def test_full_sdk_but_no_gradle_names_only_gradle(tmp_path: Path, checkout: Path) -> None:
    _export(tmp_path, "clcnet_a", "manifest.json", "clcnet_a.tflite")
    sdk = tmp_path / "sdk"
    (sdk / "platforms" / "android-35").mkdir(parents=True)
    (sdk / "build-tools" / "35.0.0").mkdir(parents=True)
    line = _one_line_failure(_run(tmp_path, checkout, ANDROID_HOME=str(sdk)))
    problems = [p for p in line.split(": ", 1)[1].split("; ") if "java" not in p]  # a JDK may be absent in CI
    assert len(problems) == 1 and "no Gradle wrapper" in problems[0], line
    assert not _assets(checkout).exists()  # refused before copying anything into the app


def _manifest(tmp_path: Path, name: str, fused: dict[str, bool]) -> None:
    """A manifest shaped like `clcdeploy export`'s, with extra.needs_kernel_library per format."""
    formats = {fmt: {"file": f"{name}.{fmt}", "extra": {"needs_kernel_library": on}} for fmt, on in fused.items()}
    (tmp_path / "models" / name / "manifest.json").write_text(json.dumps({"model": name, "formats": formats}, indent=2))


def test_refuses_an_artifact_exported_with_fused_igc(tmp_path: Path, checkout: Path) -> None:
    _export(tmp_path, "clcnet_f", "clcnet_f.pte", "clcnet_f.tflite")
    _manifest(tmp_path, "clcnet_f", {"pte": True, "tflite": False, "onnx": True})
    _export(tmp_path, "clcnet_a", "clcnet_a.pte", "clcnet_a.tflite")
    _manifest(tmp_path, "clcnet_a", {"pte": False, "tflite": False, "onnx": True})  # the onnx is not bundled
    line = _one_line_failure(_run(tmp_path, checkout))
    assert "clcnet_f: clcnet_f.pte was exported with --fused-igc" in line and "without --fused-igc" in line, line
    assert "clcnet_f.tflite" not in line and "clcnet_f.onnx" not in line and "clcnet_a" not in line, line


def _fake_gradle(tmp_path: Path, version: str) -> Path:
    """An executable that answers --version as Gradle does (a banner, then `Gradle X.Y.Z`)."""
    gradle = tmp_path / "bin" / "gradle"
    gradle.parent.mkdir()
    rule = "-" * 60
    gradle.write_text(f"#!/bin/sh\nprintf '\\n{rule}\\nGradle {version}\\n{rule}\\n\\nBuild time: 2018-01-01\\n'\n")
    gradle.chmod(0o755)
    return gradle


def _full_sdk(tmp_path: Path) -> Path:
    sdk = tmp_path / "sdk"
    (sdk / "platforms" / "android-35").mkdir(parents=True)
    (sdk / "build-tools" / "35.0.0").mkdir(parents=True)
    return sdk


def test_refuses_a_gradle_too_old_to_create_the_wrapper(tmp_path: Path, checkout: Path) -> None:
    _export(tmp_path, "clcnet_a", "manifest.json", "clcnet_a.tflite")
    gradle = _fake_gradle(tmp_path, "4.4.1")  # Debian's
    line = _one_line_failure(_run(tmp_path, checkout, ANDROID_HOME=str(_full_sdk(tmp_path)), GRADLE=str(gradle)))
    problems = [p for p in line.split(": ", 1)[1].split("; ") if "java" not in p]  # a JDK may be absent in CI
    assert len(problems) == 1, line
    assert f"{gradle} is Gradle 4.4.1" in problems[0] and "needs Gradle >= 8" in problems[0], line
    assert not _assets(checkout).exists()  # refused before copying anything into the app


def test_accepts_a_gradle_8_to_create_the_wrapper(tmp_path: Path, checkout: Path) -> None:
    _export(tmp_path, "clcnet_a", "manifest.json", "clcnet_a.tflite")
    gradle = _fake_gradle(tmp_path, "8.11.1")
    line = _one_line_failure(_run(tmp_path, checkout, GRADLE=str(gradle)))  # no SDK: still exit 2
    assert "ANDROID_HOME is not set" in line
    assert "Gradle" not in line, line
