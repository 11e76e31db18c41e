"""Start, stop and inspect virtual-device endpoints running in the background (one pidfile per port)."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import clcdeploy
from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.paths import virtual_device_dir
from clcdeploy.device.virtual import emulation
from clcdeploy.files import write_atomic

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# How messages name `start`'s settings: the CLI's options (shell_v2 is API-only).
SETTING_FLAGS = {"host": "--host ", "auth": "--auth ", "latency_ms": "--latency-ms ",
                 "drop_after_bytes": "--drop-after-bytes "}


@dataclass
class Endpoint:
    serial: str
    port: int
    pid: int
    root: str
    log: str
    running: bool
    settings: dict = field(default_factory=dict)

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
                    root=data["root"], log=data["log"], running=_alive(data["pid"]),
                    settings=data.get("settings", {"host": data["host"]}))


def status(state_dir: Path | None = None) -> list[Endpoint]:
    folder = state_dir or run_dir()
    return [ep for f in sorted(folder.glob("adbd-*.json")) if (ep := _read(f)) is not None]


def start(*, port: int = 5555, host: str = "127.0.0.1", auth: str = "accept", plain_root: Path | None = None,
          state_dir: Path | None = None, keys_dir: Path | None = None, drop_after_bytes: int | None = None,
          latency_ms: float = 0.0, shell_v2: bool = True, log: Callable[[str], None] = print) -> Endpoint:
    """Start an endpoint in the background and wait until it listens. `port=0` picks a free port.

    Without `plain_root` the endpoint serves the arm64 rootfs (built first if needed) under qemu.
    """
    _check_options(port, latency_ms, drop_after_bytes)
    settings = {"host": host, "auth": auth, "latency_ms": latency_ms, "drop_after_bytes": drop_after_bytes,
                "shell_v2": shell_v2}
    folder = state_dir or run_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if port:
        existing = _read(folder / f"adbd-{port}.json")
        if existing and existing.running:
            _check_same_settings(existing, settings)
            if plain_root is None:
                _check_rootfs_whole(existing)
            log(f"virtual device already running on {existing.serial} (pid {existing.pid})")
            return existing
        _check_port_free(host, port)  # before a rootfs build that can take minutes
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
            if proc.returncode == errno.EADDRINUSE:  # taken between our check and the endpoint's bind
                _discard_start(logfile, ready)
                raise VirtualDeviceError(_in_use(port))
            raise VirtualDeviceError(f"the virtual device's ADB endpoint exited at start (exit {proc.returncode}): "
                                     f"{_discard_start(logfile, ready)}")
        if time.monotonic() > deadline:
            _terminate(proc.pid)
            raise VirtualDeviceError(f"the ADB endpoint did not start within {START_TIMEOUT_S:.0f} s: "
                                     f"{_discard_start(logfile, ready)}")
        time.sleep(0.05)
    actual_port = int(ready.read_text())
    ready.unlink()
    final_log = folder / f"adbd-{actual_port}.log"
    os.replace(logfile, final_log)  # the process keeps its open file
    info = {"host": host, "port": actual_port, "pid": proc.pid, "root": str(root), "log": str(final_log),
            "settings": settings}
    pidfile = folder / f"adbd-{actual_port}.json"
    write_atomic(pidfile, json.dumps(info))
    return _read(pidfile)


def _check_options(port: int, latency_ms: float, drop_after_bytes: int | None) -> None:
    if not 0 <= port <= 65535:
        raise VirtualDeviceError(f"--port {port}: a TCP port is 1 to 65535 (0 picks a free one)")
    if not (math.isfinite(latency_ms) and latency_ms >= 0):
        raise VirtualDeviceError(f"--latency-ms {latency_ms:g}: the delay must be a finite number of milliseconds, "
                                 f"0 or more")
    if drop_after_bytes is not None and drop_after_bytes < 0:
        raise VirtualDeviceError(f"--drop-after-bytes {drop_after_bytes}: must be 0 or more "
                                 f"(leave it out to never drop)")


def _in_use(port: int) -> str:
    return f"port {port} is in use (by another program): pick another --port"


def _check_port_free(host: str, port: int) -> None:
    """Bind the address as the endpoint will (SO_REUSEADDR), so a taken port is one clear line."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror as exc:
            raise VirtualDeviceError(f"--host {host}: cannot listen there ({exc.strerror})") from exc
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise VirtualDeviceError(_in_use(port)) from exc
            raise VirtualDeviceError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def _check_same_settings(existing: Endpoint, wanted: dict) -> None:
    """A running endpoint is reused only when started with the same settings (unknown ones count as equal)."""
    differ = [k for k, v in wanted.items() if k in existing.settings and existing.settings[k] != v]
    if differ:
        raise VirtualDeviceError(f"a virtual device already runs on port {existing.port} (pid {existing.pid}) with "
                                 f"{_flags(existing.settings, differ)}; to start it with {_flags(wanted, differ)}, "
                                 f"stop it first: clcdeploy device stop --port {existing.port}")


def _check_rootfs_whole(existing: Endpoint) -> None:
    """A running device that serves the cached rootfs is reused only if the rootfs still has every file its uses
    need; files removed under it cannot be rebuilt while it serves them. (A plain endpoint's folder is not a
    rootfs.)"""
    from clcdeploy.device.virtual.rootfs import missing_files, rootfs_dir

    if Path(existing.root) != rootfs_dir():
        return
    missing = missing_files(Path(existing.root))
    if missing:
        raise VirtualDeviceError(f"the virtual device {existing.serial} (pid {existing.pid}) runs, but its rootfs "
                                 f"{existing.root} lost /{', /'.join(missing)}: stop it (clcdeploy device stop "
                                 f"--port {existing.port}) and start it again, which rebuilds the rootfs")


def _flags(settings: dict, keys: list[str]) -> str:
    def value(v) -> str:
        return "(not set)" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    return " ".join(f"{SETTING_FLAGS.get(k, k + '=')}{value(settings[k])}" for k in keys)


def _discard_start(logfile: Path, ready: Path) -> str:
    """Remove what a failed start left in the run folder; return the last lines of its log for the message."""
    try:
        tail = " | ".join(logfile.read_text(errors="replace").strip().splitlines()[-3:])
    except OSError:
        tail = ""
    logfile.unlink(missing_ok=True)
    ready.unlink(missing_ok=True)
    return tail or "no output"


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
