"""Typed errors. The CLI turns every `ClcDeployError` into one line on stderr and exit code 2."""

from __future__ import annotations

import sys


class ClcDeployError(Exception):
    """Base class: a problem the user can fix; its message says what was wrong and what to do."""

    exit_code = 2


class UnknownModelError(ClcDeployError):
    """A model name that is not in the zoo."""


class ConfigurationError(ClcDeployError):
    """A model or block configuration that cannot be built (names the bad parameter)."""


class AnalysisError(ClcDeployError):
    """A module the analysis cannot interpret."""


class ExportError(ClcDeployError):
    """An export that failed (conversion, validation or writing)."""


class ValidationError(ExportError):
    """An artifact whose outputs do not match PyTorch."""


class WeightsError(ClcDeployError):
    """A missing, corrupt or mismatched weights file."""


class DeviceError(ClcDeployError):
    """A device that cannot be reached or used."""


class BenchError(ClcDeployError):
    """A benchmark that cannot run or did not complete."""


class OutputFolderError(ClcDeployError):
    """An output folder that cannot be created or written to."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (at most `limit` characters), for one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0][:limit] if text else type(exc).__name__


def print_usage_error(program: str, message: str) -> int:
    """Bad input to `program` (a script): one line on stderr in argparse's form, as the clcdeploy CLI prints it;
    returns exit code 2 for the caller to return."""
    print(f"{program}: error: {message}", file=sys.stderr)
    return 2
