"""One benchmark per device at a time: two would time each other, and share the device's work files."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator

from clcdeploy.device.paths import cache_dir
from clcdeploy.errors import BenchError


@contextlib.contextmanager
def bench_lock(serial: str) -> Iterator[None]:
    """Hold this host's lock on `serial` while the block runs; BenchError at once if another process holds it.

    The lock is a file lock (released by the kernel when its holder exits, however it ends); it covers the
    benchmarks started from this host, which is where two of them meet on one device.
    """
    folder = cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{re.sub(r'[^A-Za-z0-9._-]', '_', serial)}.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise BenchError(f"another clcdeploy bench (pid {holder}) is using {serial}: two benchmarks on one "
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
