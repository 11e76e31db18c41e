"""The device interface the benchmark code uses: run a command, move files (hash-checked), read facts."""

from __future__ import annotations

import os
import shlex
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

from clcdeploy.errors import DeviceError
from clcdeploy.files import file_digest, sha256_file  # noqa: F401  (part of the device API)

# progress(remote_or_local_path, bytes_done, bytes_total)
Progress = Callable[[str, int, int], None]

# A device's hash commands, best first, and the hashlib algorithm of each: toybox (Android 6 on) always has md5sum
# and sha1sum, sha256sum only when built with its crypto library; Android 5 has no toybox, and its toolbox has only
# `md5` (output as md5sum's).
HASH_COMMANDS = (("sha256sum", "sha256"), ("sha1sum", "sha1"), ("md5sum", "md5"), ("md5", "md5"))


class Digest(NamedTuple):
    algorithm: str  # hashlib's name
    hexdigest: str

    def matches(self, local_path: str | os.PathLike, sha256: str | None = None) -> bool:
        """Whether the local file has this digest (`sha256`: its sha256, if the caller already has it)."""
        if self.algorithm == "sha256" and sha256 is not None:
            return self.hexdigest == sha256
        return self.hexdigest == file_digest(local_path, self.algorithm)


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
    cores: int = 0  # present (the kernel's CPU list)
    cores_online: int = 0  # when the facts were read: phones take idle cores offline
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
        """Copy a file to the device and verify its content there (remote_digest)."""

    @abstractmethod
    def pull(self, remote_path: str, local_path: str | os.PathLike, *, progress: Progress | None = None) -> None:
        """Copy a file from the device (atomic local write) and verify its content (remote_digest)."""

    def remote_digest(self, remote_path: str) -> Digest | None:
        """The digest of a device file by the best hash command the device has (HASH_COMMANDS), or None when the
        file does not exist; DeviceError if the device has none of them."""
        path = quote(remote_path)
        tools = " ".join(tool for tool, _ in HASH_COMMANDS)
        # A command the device lacks fails (127) and the next is tried.
        result = self.shell(f"if [ -f {path} ]; then for t in {tools}; do out=$($t {path} 2>/dev/null) && "
                            f"{{ echo \"$t $out\"; exit 0; }}; done; echo __no_hash_command__; "
                            f"else echo __absent__; fi", timeout_s=120)
        words = result.stdout.split()
        if result.exit_code != 0 or not words or words[0] == "__absent__":
            return None
        if words[0] == "__no_hash_command__" or len(words) < 2:
            raise DeviceError(f"{self.serial} has none of {', '.join(tool for tool, _ in HASH_COMMANDS)} to check "
                              f"{remote_path} with: install toybox or busybox on it")
        return Digest(dict(HASH_COMMANDS)[words[0]], words[1].lower())

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
