"""Start, stop and inspect virtual-device endpoints running in the background (one pidfile per port)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import clcdeploy
from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.paths import virtual_device_dir
from clcdeploy.device.virtual import emulation

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@dataclass
class Endpoint:
    serial: str
    port: int
    pid: int
    root: str
    log: str
    running: bool

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def run_dir() -> Path:
    return virtual_device_dir() / "run"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _read(pidfile: Path) -> Endpoint | None:
    try:
        data = json.loads(pidfile.read_text())
    except (OSError, ValueError):
        return None
    return Endpoint(serial=f"{data['host']}:{data['port']}", port=data["port"], pid=data["pid"],
                    root=data["root"], log=data["log"], running=_alive(data["pid"]))


def status(state_dir: Path | None = None) -> list[Endpoint]:
    folder = state_dir or run_dir()
    return [ep for f in sorted(folder.glob("adbd-*.json")) if (ep := _read(f)) is not None]


def start(*, port: int = 5555, host: str = "127.0.0.1", auth: str = "accept", plain_root: Path | None = None,
          state_dir: Path | None = None, keys_dir: Path | None = None, drop_after_bytes: int | None = None,
          latency_ms: float = 0.0, shell_v2: bool = True, log: Callable[[str], None] = print) -> Endpoint:
    """Start an endpoint in the background and wait until it listens. `port=0` picks a free port.

    Without `plain_root` the endpoint serves the arm64 rootfs (built first if needed) under qemu.
    """
    folder = state_dir or run_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if port:
        existing = _read(folder / f"adbd-{port}.json")
        if existing and existing.running:
            log(f"virtual device already running on {existing.serial} (pid {existing.pid})")
            return existing
    if plain_root is None:
        from clcdeploy.device.virtual.rootfs import build_rootfs

        root = build_rootfs(log=log)
        emulation.ensure_binfmt()
    else:
        root = plain_root
    nonce = f"{os.getpid()}-{time.monotonic_ns()}"
    ready = folder / f"ready-{nonce}"
    logfile = folder / f"adbd-{nonce}.log"
    argv = [sys.executable, "-m", "clcdeploy.device.virtual.adbd", "--host", host, "--port", str(port),
            "--root", str(root), "--state-dir", str(keys_dir or virtual_device_dir()), "--auth", auth,
            "--ready-file", str(ready), "--latency-ms", str(latency_ms)]
    if drop_after_bytes is not None:
        argv += ["--drop-after-bytes", str(drop_after_bytes)]
    if not shell_v2:
        argv.append("--no-shell-v2")
    if plain_root is not None:
        argv.append("--plain")
    elif emulation.is_root():
        # A private mount namespace: /proc, /sys and /dev mounted in the rootfs vanish with the endpoint.
        argv = ["unshare", "--mount", "--propagation", "private", *argv, "--mount-namespace"]
    env = dict(os.environ)
    package_parent = str(Path(clcdeploy.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready.exists():
        if proc.poll() is not None:
            tail = " | ".join(logfile.read_text(errors="replace").strip().splitlines()[-3:])
            raise VirtualDeviceError(f"the virtual device's ADB endpoint exited at start (exit {proc.returncode}): {tail}")
        if time.monotonic() > deadline:
            _terminate(proc.pid)
            raise VirtualDeviceError(f"the ADB endpoint did not start within {START_TIMEOUT_S:.0f} s; see {logfile}")
        time.sleep(0.05)
    actual_port = int(ready.read_text())
    ready.unlink()
    final_log = folder / f"adbd-{actual_port}.log"
    os.replace(logfile, final_log)  # the process keeps its open file
    info = {"host": host, "port": actual_port, "pid": proc.pid, "root": str(root), "log": str(final_log)}
    pidfile = folder / f"adbd-{actual_port}.json"
    tmp = pidfile.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, pidfile)
    return _read(pidfile)


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:  # reap it if it is our child
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(port: int | None = None, *, state_dir: Path | None = None) -> list[Endpoint]:
    """Stop the endpoint on `port` (all endpoints when None); return what was stopped."""
    stopped = []
    for ep in status(state_dir):
        if port is not None and ep.port != port:
            continue
        if ep.running:
            _terminate(ep.pid)
        (state_dir or run_dir()).joinpath(f"adbd-{ep.port}.json").unlink(missing_ok=True)
        Path(ep.log).unlink(missing_ok=True)
        stopped.append(ep)
    return stopped
