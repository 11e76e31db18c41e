"""Static checks of android_app/ that need no Android SDK: XML, declared activities, pinned versions, and
that the Kotlin side of the benchmark contract names the same package, extras, file and JSON keys as the
Python side (clcdeploy/bench/app_protocol.py and app_result.schema.json)."""

from __future__ import annotations

import json
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from clcdeploy.bench import app_protocol as ap
from clcdeploy.bench.app_schema import load_schema

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "android_app"
MAIN = APP / "app" / "src" / "main"
KOTLIN = MAIN / "java" / "org" / "clcdeploy" / "demo"
ANDROID_NS = "{http://schemas.android.com/apk/res/android}"


def _xml_files() -> list[Path]:
    return sorted([MAIN / "AndroidManifest.xml", *(MAIN / "res").rglob("*.xml")])


@pytest.mark.parametrize("path", _xml_files(), ids=lambda p: str(p.relative_to(APP)))
def test_xml_is_well_formed(path: Path) -> None:
    ET.parse(path)


def test_layout_ids_used_by_kotlin_exist() -> None:
    layout = (MAIN / "res" / "layout" / "activity_main.xml").read_text()
    declared = set(re.findall(r'android:id="@\+id/(\w+)"', layout))
    used = set(re.findall(r"R\.id\.(\w+)", (KOTLIN / "MainActivity.kt").read_text()))
    assert used and used <= declared, f"ids used but not in the layout: {used - declared}"


def test_string_resources_used_by_kotlin_and_xml_exist() -> None:
    strings = {e.get("name") for e in ET.parse(MAIN / "res" / "values" / "strings.xml").getroot()}
    sources = [p.read_text() for p in KOTLIN.glob("*.kt")] + [p.read_text() for p in _xml_files()]
    used = {m for text in sources for m in re.findall(r"R\.string\.(\w+)|@string/(\w+)", text) for m in m if m}
    assert used and used <= strings, f"missing strings: {used - strings}"


def _activity_names() -> dict[str, ET.Element]:
    root = ET.parse(MAIN / "AndroidManifest.xml").getroot()
    return {a.get(ANDROID_NS + "name"): a for a in root.iter("activity")}


def test_every_activity_the_harness_starts_is_declared_and_exported() -> None:
    activities = _activity_names()
    for component in (ap.BENCHMARK_ACTIVITY, ap.DEMO_ACTIVITY):
        package, cls = component.split("/")
        assert package == ap.PACKAGE
        assert cls in activities, f"{cls} is not declared in AndroidManifest.xml"
        assert activities[cls].get(ANDROID_NS + "exported") == "true", f"{cls} must be exported for am start"
        assert (KOTLIN / f"{cls.lstrip('.')}.kt").is_file()


def test_only_the_shell_user_may_start_the_benchmark() -> None:
    """BenchmarkActivity reads any path it is given: only callers holding DUMP (adb's shell user) may start it;
    the launcher activity stays open to everyone."""
    activities = _activity_names()
    benchmark = activities[ap.BENCHMARK_ACTIVITY.split("/")[1]]
    assert benchmark.get(ANDROID_NS + "permission") == "android.permission.DUMP"
    assert activities[ap.DEMO_ACTIVITY.split("/")[1]].get(ANDROID_NS + "permission") is None


def test_benchmark_survives_configuration_changes_mid_run() -> None:
    changes = set(_activity_names()[ap.BENCHMARK_ACTIVITY.split("/")[1]].get(ANDROID_NS + "configChanges").split("|"))
    needed = {"orientation", "screenSize", "screenLayout", "smallestScreenSize", "uiMode", "fontScale", "locale",
              "layoutDirection", "density", "keyboard", "keyboardHidden", "navigation"}
    assert needed <= changes, f"a change of {needed - changes} would recreate BenchmarkActivity mid-run"


def test_launcher_activity_is_the_demo() -> None:
    launcher = [
        name for name, a in _activity_names().items()
        if any(c.get(ANDROID_NS + "name") == "android.intent.category.LAUNCHER" for c in a.iter("category"))
    ]
    assert launcher == [ap.DEMO_ACTIVITY.split("/")[1]]


def test_application_id_and_namespace_are_the_harness_package() -> None:
    gradle = (APP / "app" / "build.gradle.kts").read_text()
    assert f'applicationId = "{ap.PACKAGE}"' in gradle
    assert f'namespace = "{ap.PACKAGE}"' in gradle
    assert "applicationIdSuffix" not in gradle, "both flavors must install as the package the harness drives"
    for kt in [*KOTLIN.glob("*.kt"), *(APP / "app" / "src").glob("*/java/org/clcdeploy/demo/*.kt")]:
        assert kt.read_text().startswith(f"package {ap.PACKAGE}\n"), kt


def test_both_abis_and_min_sdks_are_declared() -> None:
    gradle = (APP / "app" / "build.gradle.kts").read_text()
    assert re.search(r'abiFilters \+= listOf\("armeabi-v7a", "arm64-v8a"\)', gradle)
    assert re.search(r'create\("legacy"\) \{[^}]*minSdk = 22', gradle)
    assert re.search(r'create\("full"\) \{[^}]*minSdk = 23', gradle)
    assert '"fullImplementation"(libs.executorch.android)' in gradle


def test_versions_are_pinned_and_executorch_matches_the_wheel() -> None:
    catalog = tomllib.loads((APP / "gradle" / "libs.versions.toml").read_text())
    for name, version in catalog["versions"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} = {version!r} is not an exact version"
    assert catalog["libraries"]["executorch-android"]["module"] == "org.pytorch:executorch-android"
    assert catalog["libraries"]["litert"]["module"] == "com.google.ai.edge.litert:litert"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = next(d for d in pyproject["project"]["dependencies"] if d.startswith("executorch"))
    assert wheel == f"executorch=={catalog['versions']['executorch']}", "keep the AAR and the exporter in step"
    wrapper = (APP / "gradle" / "wrapper" / "gradle-wrapper.properties").read_text()
    assert re.search(r"gradle-\d+\.\d+(\.\d+)?-bin\.zip", wrapper)


def _kotlin_consts(path: Path) -> dict[str, str]:
    return dict(re.findall(r'const val (\w+) = "([^"]*)"', path.read_text()))


def test_kotlin_protocol_matches_python() -> None:
    kt = _kotlin_consts(KOTLIN / "Protocol.kt")
    for name in ("EXTRA_MODEL_PATH", "EXTRA_RUNTIME", "EXTRA_ITERATIONS", "EXTRA_WARMUP", "EXTRA_THREADS",
                 "EXTRA_RUN_ID", "EXTRA_INPUT_SHAPE", "RESULT_FILE", "LOG_TAG"):
        assert kt[name] == getattr(ap, name), name
    assert (kt["RUNTIME_PTE"], kt["RUNTIME_TFLITE"]) == ap.RUNTIMES


def test_kotlin_defaults_are_the_harness_defaults() -> None:
    from clcdeploy.bench.commands import DEFAULT_RUNS, DEFAULT_WARMUP

    text = (KOTLIN / "Protocol.kt").read_text()
    defaults = dict(re.findall(r"const val (DEFAULT_\w+) = (\d+)", text))
    assert int(defaults["DEFAULT_WARMUP"]) == DEFAULT_WARMUP
    assert int(defaults["DEFAULT_ITERATIONS"]) == DEFAULT_RUNS


def test_kotlin_sources_cite_files_that_exist() -> None:
    """Doc comments point at tests/…py and clcdeploy/… files: they must exist (they were renamed once)."""
    for kt in APP.rglob("*.kt"):
        for cited in re.findall(r"\b((?:tests|clcdeploy)/[\w/.]*\.(?:py|json))\b", kt.read_text()):
            assert (ROOT / cited).is_file(), f"{kt.name} cites {cited}, which does not exist"


# Keys added after the first apps shipped: not required, so that results of an app built before them still parse.
OPTIONAL_KEYS = {"runtime_library"}


def _result_keys() -> tuple[dict[str, str], dict[str, str]]:
    text = (KOTLIN / "ResultKeys.kt").read_text()
    top, _, device = text.partition("object Device")
    consts = re.compile(r'const val (\w+) = "([^"]*)"')
    return dict(consts.findall(top)), dict(consts.findall(device))


def test_kotlin_result_keys_are_the_schema_keys() -> None:
    schema = load_schema()
    top, device = _result_keys()
    top_keys = {v for k, v in top.items() if not k.startswith("STATUS_")}
    assert top_keys == set(schema["properties"]) == set(schema["required"]) | OPTIONAL_KEYS
    device_schema = schema["properties"]["device"]
    assert set(device.values()) == set(device_schema["properties"]) == set(device_schema["required"])
    assert {top["STATUS_OK"], top["STATUS_ERROR"]} == set(schema["properties"]["status"]["enum"])
    version = re.search(r"SCHEMA_VERSION_VALUE = (\d+)", (KOTLIN / "ResultKeys.kt").read_text())
    assert version and int(version.group(1)) == schema["properties"]["schema_version"]["const"]


def _written_keys() -> tuple[list[str], list[str]]:
    """The keys ResultJson.toJson puts, resolved through ResultKeys.kt, in order."""
    text = (KOTLIN / "ResultJson.kt").read_text()
    assert not re.search(r'\.put\(\s*"', text), "ResultJson.kt must use ResultKeys constants, not literals"
    top, device = _result_keys()
    written_device = [device[n] for n in re.findall(r"device\.put\(ResultKeys\.Device\.(\w+)", text)]
    written_top = [top[n] for n in re.findall(r"json\.put\(ResultKeys\.(\w+)", text)]
    return written_top, written_device


def test_kotlin_writer_writes_every_schema_key_once() -> None:
    schema = load_schema()
    written_top, written_device = _written_keys()
    assert sorted(written_top) == sorted(schema["properties"])
    assert sorted(written_device) == sorted(schema["properties"]["device"]["required"])


def test_json_shaped_like_the_kotlin_writer_parses() -> None:
    """Build the object key by key in ResultJson's order with values of the Kotlin types, then parse it."""
    written_top, written_device = _written_keys()
    device_values = {
        "manufacturer": "Google", "model": "Pixel 7", "hardware": "Tensor G2", "abis": ["arm64-v8a"],
        "process_64bit": True, "sdk_int": 34, "release": "14", "cores": 8, "total_mem_mb": 7_647.2,
    }
    top_values = {
        "schema_version": 1, "run_id": None, "status": "ok", "error": None, "model": "/data/local/tmp/a.pte",
        "runtime": "pte", "runtime_library": "org.pytorch:executorch-android:1.5.1", "threads": 0, "warmup": 1, "iterations": 2, "load_ms": 35.1, "times_ms": [9.5, 9],
        "device": {k: device_values[k] for k in written_device},
    }
    text = json.dumps({k: top_values[k] for k in written_top}, indent=2)
    result = ap.parse_result(text)
    assert result.ok and result.times_ms == [9.5, 9.0] and result.device["process_64bit"] is True
    assert result.runtime_library == "org.pytorch:executorch-android:1.5.1"
    older = json.loads(text)
    del older["runtime_library"]  # written by an app built before the key
    assert ap.parse_result(json.dumps(older)).runtime_library is None


def test_schema_file_is_packaged_with_the_bench_module() -> None:
    path = ROOT / "clcdeploy" / "bench" / "app_result.schema.json"
    assert json.loads(path.read_text()) == load_schema()
    assert json.loads(path.read_text())["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _dataclass_fields(path: Path, cls: str) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    return {s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}


def test_kotlin_manifest_reader_uses_the_exporters_field_names() -> None:
    """ModelManifest.kt accepts a few spellings; the exporter's own (clcdeploy/export/manifest.py) must be among them."""
    exporter = ROOT / "clcdeploy" / "export" / "manifest.py"
    if not exporter.is_file():
        pytest.skip("clcdeploy/export/manifest.py is not in this tree")
    kotlin = (KOTLIN / "ModelManifest.kt").read_text()
    read = set(re.findall(r'"(\w+)"', kotlin))
    fields = {"model", "mult_adds", "params", "input_shape", "formats", "weights"}
    assert fields <= _dataclass_fields(exporter, "Manifest")
    assert fields <= read
    assert {"file", "bytes", "input_shape"} <= _dataclass_fields(exporter, "FormatEntry")
    assert {"file", "bytes", "input_shape"} <= read


def test_kotlin_recognises_the_exporters_random_weights() -> None:
    """MainActivity warns that the labels are meaningless when ModelManifest.randomWeights: the exporter's
    description of random weights (clcdeploy/export/weights.py random_weights) must start with its prefix."""
    weights = ROOT / "clcdeploy" / "export" / "weights.py"
    if not weights.is_file():
        pytest.skip("clcdeploy/export/weights.py is not in this tree")
    prefix = re.search(r'weights\?\.startsWith\("([^"]+)"\)', (KOTLIN / "ModelManifest.kt").read_text())
    assert prefix, "ModelManifest.kt no longer recognises random weights by a prefix"
    assert re.search(rf'return f"{re.escape(prefix.group(1))}\b', weights.read_text())
