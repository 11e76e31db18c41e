"""The device interface the benchmark code uses: run a command, move files (sha256-checked), read facts."""

from __future__ import annotations

import os
import shlex
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from clcdeploy.errors import DeviceError
from clcdeploy.files import sha256_file  # noqa: F401  (part of the device API)

# progress(remote_or_local_path, bytes_done, bytes_total)
Progress = Callable[[str, int, int], None]


@dataclass
class CommandResult:
    stdout: str
    stderr: str
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self, what: str) -> "CommandResult":
        """Return self if the command succeeded, else raise DeviceError naming `what` and the stderr tail."""
        if self.exit_code != 0:
            tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-3:]
            detail = " | ".join(tail) if tail else "no output"
            raise DeviceError(f"{what} failed with exit status {self.exit_code}: {detail}")
        return self


@dataclass
class DeviceFacts:
    """What a report needs to say about the device a number was measured on."""

    serial: str
    model: str = ""
    manufacturer: str = ""
    android_version: str = ""
    abi: str = ""
    kernel_machine: str = ""
    cpu_hardware: str = ""
    cpu_implementer: str = ""
    cpu_parts: list[str] = field(default_factory=list)
    cpu_core_names: list[str] = field(default_factory=list)
    cores: int = 0
    max_freq_khz: list[int | None] = field(default_factory=list)
    governors: list[str | None] = field(default_factory=list)
    thermal_c: dict[str, float] = field(default_factory=dict)
    is_emulated: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quote(path: str) -> str:
    return shlex.quote(path)


class Device(ABC):
    """A place to run benchmarks: the host itself or an ADB device."""

    serial: str
    work_dir: str

    @abstractmethod
    def shell(self, command: str, *, timeout_s: float | None = None) -> CommandResult:
        """Run `command` with the device's shell; return its output and exit status."""

    @abstractmethod
    def push(self, local_path: str | os.PathLike, remote_path: str, *, progress: Progress | None = None) -> None:
        """Copy a file to the device and verify its sha256 there."""

    @abstractmethod
    def pull(self, remote_path: str, local_path: str | os.PathLike, *, progress: Progress | None = None) -> None:
        """Copy a file from the device (atomic local write) and verify its sha256."""

    def remote_sha256(self, remote_path: str) -> str | None:
        """sha256 of a device file, or None when it does not exist."""
        result = self.shell(f"if [ -f {quote(remote_path)} ]; then sha256sum {quote(remote_path)}; else echo __absent__; fi",
                            timeout_s=120)
        out = result.stdout.strip()
        if result.exit_code != 0 or not out or out == "__absent__":
            return None
        return out.split()[0].lower()

    def facts(self) -> DeviceFacts:
        from clcdeploy.device.facts import collect_facts

        return collect_facts(self)

    def thermal(self) -> dict[str, float]:
        from clcdeploy.device.facts import read_thermal

        return read_thermal(self)

    def ensure_work_dir(self) -> str:
        self.shell(f"mkdir -p {quote(self.work_dir)}", timeout_s=30).check(f"creating {self.work_dir}")
        return self.work_dir

    def close(self) -> None:
        """Release the connection (no-op for the host)."""

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_local_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DeviceError(f"{p}: no such file to push")
    return p
