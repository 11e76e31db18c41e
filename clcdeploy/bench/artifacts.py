"""Finding exported artifacts (models/NAME/manifest.json) without importing torch, and exporting the
missing ones when the export stack is installed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from clcdeploy.errors import BenchError
from clcdeploy.units import millions

FORMATS = ("pte", "tflite", "onnx")


@dataclass(frozen=True)
class Artifact:
    model: str
    fmt: str
    path: Path
    bytes: int
    sha256: str
    input_shape: tuple[int, ...]
    macs: int | None
    params: int | None
    needs_kernel_library: bool = False  # exported with --fused-igc: calls clcdeploy's own kernel
    delegation_failures: tuple[str, ...] = ()  # e.g. ops left outside XNNPACK: they are in its latency
    computed_macs: int | None = None  # set where the artifact computes more than the model's mult-adds


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def find_artifact(models_dir: Path, model: str, fmt: str) -> Artifact | None:
    """The artifact of `model` in `fmt` described by its manifest, if it exists on disk."""
    manifest = _read_manifest(models_dir / model)
    entry = (manifest or {}).get("formats", {}).get(fmt)
    if not entry:
        return None
    path = models_dir / model / entry["file"]
    if not path.is_file():
        return None
    extra = entry.get("extra", {})
    computed = extra.get("topological_layers", {}).get("computed_mult_adds")
    return Artifact(model, fmt, path, path.stat().st_size, entry["sha256"], tuple(entry["input_shape"]),
                    manifest.get("mult_adds"), manifest.get("params"), bool(extra.get("needs_kernel_library")),
                    tuple(entry.get("delegation_failures", ())),
                    computed if computed != manifest.get("mult_adds") else None)


def missing_artifacts(models_dir: Path, models: list[str], formats: list[str]) -> list[tuple[str, str]]:
    """The (model, format) pairs that have no exported artifact in `models_dir`."""
    return [(model, fmt) for model in models for fmt in formats if find_artifact(models_dir, model, fmt) is None]


def ensure_artifacts(models_dir: Path, models: list[str], formats: list[str], *, export_missing: bool,
                     log=print) -> dict[tuple[str, str], Artifact]:
    """Every (model, format) artifact; exports what is missing if allowed and possible, else says how.
    Logs a warning for each delegation failure the export recorded (the latency will include it), and a note
    where the artifacts compute more mult-adds than the model has."""
    found: dict[tuple[str, str], Artifact] = {}
    for model in models:
        missing = [f for f in formats if find_artifact(models_dir, model, f) is None]
        if missing and export_missing:
            try:
                from clcdeploy.export.pipeline import export_model
            except ImportError:
                export_model = None
            if export_model is not None:
                log(f"exporting {model} ({', '.join(missing)}) into {models_dir}")
                export_model(model, formats=formats, out_dir=models_dir)  # the manifest covers all
                missing = [f for f in formats if find_artifact(models_dir, model, f) is None]
        if missing:
            raise BenchError(f"no {', '.join(missing)} artifact for {model} in {models_dir}: run "
                             f"`clcdeploy export {model} --formats {','.join(missing)} --out {models_dir}`")
        for fmt in formats:
            found[(model, fmt)] = find_artifact(models_dir, model, fmt)
            for failure in found[(model, fmt)].delegation_failures:
                log(f"warning: {model}: {failure}")
        denser = sorted(f for f in formats if found[(model, f)].computed_macs)
        if denser:
            artifact = found[(model, denser[0])]
            log(f"note: {model}: its {', '.join('.' + f for f in denser)} compute {millions(artifact.computed_macs)} "
                f"mult-adds (topologically subdivided convolutions as dense ones, which run faster); the table lists "
                f"the model's {millions(artifact.macs)}")
    return found
