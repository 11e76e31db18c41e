"""The host itself as a device: commands via /bin/sh, files copied into a cache folder."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

from clcdeploy.device.base import (CommandResult, Device, DeviceFacts, Digest, Progress, check_local_file,
                                   sha256_file)
from clcdeploy.device.errors import CommandTimeoutError, StorageFullError, TransferError
from clcdeploy.device.paths import cache_dir
from clcdeploy.files import atomic_path


def _copy(src: Path, dst: Path, progress: Progress | None, label: str) -> None:
    """Copy through a temp file in the destination folder, then rename; report progress per MiB."""
    total = src.stat().st_size
    done = 0
    try:
        with atomic_path(dst) as tmp, open(src, "rb") as fin, open(tmp, "wb") as fout:
            for block in iter(lambda: fin.read(1 << 20), b""):
                fout.write(block)
                done += len(block)
                if progress:
                    progress(label, len(block), total)
            fout.flush()
            shutil.copymode(src, tmp)
    except OSError as exc:
        if exc.errno == 28:
            raise StorageFullError(f"no space left writing {dst} ({done} of {total} bytes written)") from exc
        raise TransferError(f"copying {src} to {dst} failed: {exc.strerror}") from exc


class LocalDevice(Device):
    """Benchmarks on the host (serial "local")."""

    def __init__(self, work_dir: str | os.PathLike | None = None) -> None:
        self.serial = "local"
        self.work_dir = str(work_dir or cache_dir() / "local-device")
        Path(self.work_dir).mkdir(parents=True, exist_ok=True)

    def shell(self, command: str, *, timeout_s: float | None = None) -> CommandResult:
        proc = subprocess.Popen(["/bin/sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=self.work_dir, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            raise CommandTimeoutError(f"command did not finish within {timeout_s:g} s on local: {command[:80]}")
        return CommandResult(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), proc.returncode)

    def push(self, local_path, remote_path: str, *, progress: Progress | None = None) -> None:
        src = check_local_file(local_path)
        dst = Path(remote_path)
        _copy(src, dst, progress, str(dst))
        if sha256_file(dst) != sha256_file(src):
            raise TransferError(f"{dst}: sha256 differs from {src} after copying")

    def pull(self, remote_path: str, local_path, *, progress: Progress | None = None) -> None:
        src = Path(remote_path)
        if not src.is_file():
            raise TransferError(f"{remote_path}: no such file on local")
        _copy(src, Path(local_path), progress, str(src))

    def remote_digest(self, remote_path: str) -> Digest | None:
        return Digest("sha256", sha256_file(remote_path)) if os.path.isfile(remote_path) else None

    def facts(self) -> DeviceFacts:
        facts = super().facts()
        facts.model = facts.model or platform.node()
        facts.manufacturer = facts.manufacturer or "host"
        facts.abi = facts.abi or platform.machine()
        facts.is_emulated = False
        return facts
