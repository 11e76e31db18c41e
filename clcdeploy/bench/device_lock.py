"""One benchmark per device at a time: two would time each other, and share the device's work files."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
from collections.abc import Iterator

from clcdeploy.device.paths import cache_dir
from clcdeploy.errors import BenchError


def device_key(serial: str) -> str:
    """The device a serial names: a TCP serial's host resolved (localhost:5555 is 127.0.0.1:5555), others as
    given (USB serials, "local")."""
    host, separator, port = serial.rpartition(":")
    if not separator or not port.isdigit():
        return serial
    try:
        return f"{socket.gethostbyname(host)}:{int(port)}"
    except OSError:  # unresolvable: connecting fails anyway
        return serial


@contextlib.contextmanager
def bench_lock(serial: str) -> Iterator[None]:
    """Hold this host's lock on the device `serial` names while the block runs; BenchError at once if another
    process holds it.

    The lock is a file lock (released by the kernel when its holder exits, however it ends); it covers the
    benchmarks started from this host, which is where two of them meet on one device.
    """
    key = device_key(serial)
    path = cache_dir() / "locks" / f"bench-{re.sub(r'[^A-Za-z0-9._-]', '_', key)}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")
    except OSError as exc:
        raise BenchError(f"cannot open the device lock {path} ({exc.strerror or exc}): remove what is in its "
                         f"place") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise BenchError(f"another clcdeploy bench (pid {holder}) is using {key}: two benchmarks on one "
                             f"device time each other; wait for it to finish") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)
