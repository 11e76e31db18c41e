"""Finding exported artifacts (models/NAME/manifest.json) without importing torch, and exporting the
missing ones when the export stack is installed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from clcdeploy.errors import BenchError
from clcdeploy.files import sha256_file
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
    """The manifest's content; None if there is none; BenchError if it is not a manifest export wrote."""
    path = folder / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _broken_manifest(path, f"unreadable: {exc}") from None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("formats"), dict)):
        raise _broken_manifest(path, "no formats table")
    return manifest


def _broken_manifest(path: Path, why: str) -> BenchError:
    return BenchError(f"{path} is not a manifest clcdeploy export wrote ({why}): export the model again with "
                      f"`clcdeploy export {path.parent.name} --out {path.parent.parent}`")


def find_artifact(models_dir: Path, model: str, fmt: str) -> Artifact | None:
    """The artifact of `model` in `fmt` described by its manifest, if it exists on disk."""
    manifest = _read_manifest(models_dir / model)
    entry = (manifest or {}).get("formats", {}).get(fmt)
    if not entry:
        return None
    try:
        name = entry["file"]
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"file {name!r} is not a file name in the model's folder")
        path = models_dir / model / name
        if not path.is_file():
            return None
        extra = entry.get("extra", {})
        computed = extra.get("topological_layers", {}).get("computed_mult_adds")
        return Artifact(model, fmt, path, path.stat().st_size, str(entry["sha256"]),
                        tuple(int(n) for n in entry["input_shape"]), manifest.get("mult_adds"),
                        manifest.get("params"), bool(extra.get("needs_kernel_library")),
                        tuple(entry.get("delegation_failures", ())),
                        computed if computed != manifest.get("mult_adds") else None)
    except KeyError as exc:
        raise _broken_manifest(models_dir / model / "manifest.json", f"its {fmt} entry has no {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise _broken_manifest(models_dir / model / "manifest.json", f"its {fmt} entry: {exc}") from None


def check_unchanged(artifact: Artifact) -> None:
    """A file changed since export (truncated, replaced) would be timed as if it were the exported model."""
    if sha256_file(artifact.path) != artifact.sha256:
        raise BenchError(f"{artifact.path} does not match its manifest (its sha256 changed since export): export "
                         f"it again with `clcdeploy export {artifact.model} --formats {artifact.fmt} --out "
                         f"{artifact.path.parent.parent}`")


def missing_artifacts(models_dir: Path, models: list[str], formats: list[str]) -> list[tuple[str, str]]:
    """The (model, format) pairs that have no exported artifact in `models_dir`."""
    return [(model, fmt) for model in models for fmt in formats if find_artifact(models_dir, model, fmt) is None]


def _export_missing(export_model, models_dir: Path, model: str, missing: list[str], log) -> None:
    """Export only the missing formats, at the input size of the model's other artifacts so that the manifest
    keeps them; artifacts of a user's weights cannot be matched (the weights file is not known here)."""
    manifest = _read_manifest(models_dir / model)
    size = None
    if manifest:
        if not str(manifest.get("weights", "")).startswith("random"):
            raise BenchError(f"no {', '.join(missing)} artifact for {model} in {models_dir}, whose other artifacts "
                             f"hold the weights {manifest.get('weights')}: export it with them, `clcdeploy export "
                             f"{model} --formats {','.join(missing)} --weights PATH --out {models_dir}` (and the "
                             f"same --input-size)")
        try:
            size = int(manifest["input_shape"][-1])
        except (KeyError, TypeError, ValueError, IndexError):
            raise _broken_manifest(models_dir / model / "manifest.json", "no input shape") from None
    log(f"exporting {model} ({', '.join(missing)}) into {models_dir}"
        + (f" at {size}x{size}, as its other artifacts" if size else ""))
    export_model(model, formats=missing, out_dir=models_dir, input_size=size)


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
                _export_missing(export_model, models_dir, model, missing, log)
                missing = [f for f in formats if find_artifact(models_dir, model, f) is None]
        if missing:
            raise BenchError(f"no {', '.join(missing)} artifact for {model} in {models_dir}: run "
                             f"`clcdeploy export {model} --formats {','.join(missing)} --out {models_dir}`")
        for fmt in formats:
            found[(model, fmt)] = find_artifact(models_dir, model, fmt)
            check_unchanged(found[(model, fmt)])
            for failure in found[(model, fmt)].delegation_failures:
                log(f"warning: {model}: {failure}")
        denser = sorted(f for f in formats if found[(model, f)].computed_macs)
        if denser:
            artifact = found[(model, denser[0])]
            log(f"note: {model}: its {', '.join('.' + f for f in denser)} compute {millions(artifact.computed_macs)} "
                f"mult-adds (topologically subdivided convolutions as dense ones, which run faster); the table lists "
                f"the model's {millions(artifact.macs)}")
    return found
