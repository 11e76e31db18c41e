"""`manifest.json`: what was exported, how, and what each artifact contains; written atomically."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clcdeploy.files import write_atomic
from clcdeploy.versions import package_versions

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
_TOOLS = ("clcdeploy", "torch", "executorch", "litert-torch", "ai-edge-litert", "onnx", "onnxruntime", "onnxsim")


@dataclass
class FormatEntry:
    """One artifact: file facts, validation, ops and delegation, timings, and how to feed it."""

    file: str
    bytes: int
    sha256: str
    runtime: str
    input_name: str
    input_layout: str
    input_shape: list[int]
    max_abs_diff: float | None
    validated: bool
    export_seconds: float
    validate_seconds: float
    op_histogram: dict[str, int]
    delegation: dict
    delegation_failures: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


@dataclass
class Manifest:
    """Everything `clcdeploy export` knows about one model's artifacts."""

    model: str
    family: str
    paper: str
    config: dict
    input_shape: list[int]
    mult_adds: int | None
    params: int
    weights: str
    igc_lowering: str
    formats: dict[str, FormatEntry]
    tools: dict[str, str]
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        """The manifest `to_dict` gave; ValueError or TypeError if `data` is not one."""
        data = dict(data)
        data["formats"] = {k: FormatEntry(**v) for k, v in data["formats"].items()}
        manifest = cls(**data)
        _check_types(manifest)
        return manifest


def _check_types(manifest: Manifest) -> None:
    """Raise ValueError unless the fields an export reads back have their types (JSON can hold anything)."""
    fields = [(manifest.config, dict), (manifest.input_shape, list), (manifest.weights, str),
              (manifest.igc_lowering, str)]
    for entry in manifest.formats.values():
        fields += [(entry.file, str), (entry.sha256, str), (entry.extra, dict)]
    wrong = [value for value, kind in fields if not isinstance(value, kind)]
    if wrong:
        raise ValueError(f"malformed manifest: {wrong[0]!r} has the wrong type")


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest in `folder`, or None if there is none or it cannot be read or is malformed."""
    try:
        return Manifest.from_dict(json.loads((folder / MANIFEST_NAME).read_text()))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / MANIFEST_NAME
    write_atomic(path, manifest.to_json())
    return path


def tool_versions() -> dict[str, str]:
    """Versions of Python and of every tool an export depends on."""
    return {"python": platform.python_version(), **package_versions(_TOOLS, missing="not installed")}
