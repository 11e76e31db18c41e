"""Compare each artifact, run by its own runtime, with eager PyTorch on the original model.

Like optimum's exporters: one report line per format, and one `ValidationError` listing every failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clcdeploy.errors import ValidationError

ATOL = 1e-4
INPUT_SEED = 1234
NUM_INPUTS = 2


@dataclass
class Check:
    """The outcome of running one artifact."""

    fmt: str
    runtime: str
    max_abs_diff: float | None
    error: str | None = None  # why there is no difference: the artifact failed to run, or what it gave
    atol: float = ATOL

    @property
    def ok(self) -> bool:
        return self.error is None and self.max_abs_diff is not None and self.max_abs_diff <= self.atol

    def line(self) -> str:
        if self.error is not None:
            return f"{self.fmt} ({self.runtime}): {self.error}"
        verdict = "OK" if self.ok else "MISMATCH"
        return f"{self.fmt} ({self.runtime}): max abs diff {self.max_abs_diff:.2e} (atol {self.atol:.0e}) {verdict}"


def validation_inputs(shape: tuple[int, ...], seed: int = INPUT_SEED, count: int = NUM_INPUTS) -> list[np.ndarray]:
    """Fixed-seed standard-normal NCHW float32 inputs."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape, dtype=np.float32) for _ in range(count)]


def check_artifact(fmt: str, runtime: str, run: Callable[[Path, np.ndarray], np.ndarray], path: Path,
                   inputs: list[np.ndarray], expected: list[np.ndarray], atol: float = ATOL) -> Check:
    """Run `path` on every input and return the largest absolute difference from `expected`."""
    if not all(np.isfinite(want).all() for want in expected):
        return Check(fmt, runtime, None, "not compared: PyTorch's own outputs are non-finite (NaN or inf)", atol)
    try:
        diffs = []
        for x, want in zip(inputs, expected):
            got = np.asarray(run(path, x), dtype=np.float32)
            if got.shape != want.shape:
                return Check(fmt, runtime, None, f"output shape {got.shape} != PyTorch {want.shape}", atol)
            diffs.append(float(np.max(np.abs(got - want))))
        diff = max(diffs)
        if not np.isfinite(diff):
            return Check(fmt, runtime, None, "non-finite outputs where PyTorch's are finite", atol)
        return Check(fmt, runtime, diff, None, atol)
    except Exception as exc:  # any runtime failure is a validation failure of that format
        text = str(exc).strip().splitlines()
        return Check(fmt, runtime, None, "failed to run: " + (text[0][:300] if text else type(exc).__name__), atol)


def raise_on_failures(checks: list[Check]) -> None:
    """Raise one ValidationError naming every format that failed, with every format's line."""
    failed = [c for c in checks if not c.ok]
    if failed:
        raise ValidationError(
            f"{len(failed)} of {len(checks)} artifact(s) do not match PyTorch: "
            + "; ".join(c.line() for c in checks)
            + " (use --no-validate to keep them anyway)"
        )
