"""Host-wide locks on things two clcdeploy processes must not use at once (a device being timed, a model folder
being written): file locks in the cache folder, released by the kernel when their holder exits, however it ends."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Callable, Iterator

from clcdeploy.device.paths import cache_dir
from clcdeploy.errors import ClcDeployError


@contextlib.contextmanager
def exclusive(name: str, error: type[ClcDeployError], busy: Callable[[str], str]) -> Iterator[None]:
    """Hold the lock `name` while the block runs; if another process holds it, raise `error(busy(pid of the
    holder))` at once instead of waiting."""
    path = cache_dir() / "locks" / f"{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")
    except OSError as exc:
        raise error(f"cannot open the lock {path} ({exc.strerror or exc}): remove what is in its place") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise error(busy(fh.read().strip() or "?")) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)
