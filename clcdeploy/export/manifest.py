"""`manifest.json`: what was exported, how, and what each artifact contains; written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

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
        data = dict(data)
        data["formats"] = {k: FormatEntry(**v) for k, v in data["formats"].items()}
        return cls(**data)


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest in `folder`, or None if there is none or it cannot be read."""
    try:
        return Manifest.from_dict(json.loads((folder / MANIFEST_NAME).read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / MANIFEST_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(manifest.to_json())
    return path


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def temp_path(final: Path) -> Path:
    """A fresh hidden path next to `final` (same file system, so `os.replace` is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `final`, on failure it is removed."""
    tmp = temp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
