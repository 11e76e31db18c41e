"""One benchmark per device at a time: two would time each other, and share the device's work files."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from clcdeploy.errors import BenchError
from clcdeploy.locks import exclusive


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
    process holds it (the lock covers the benchmarks started from this host, which is where two of them meet on
    one device)."""
    key = device_key(serial)
    with exclusive(f"bench-{key}", BenchError, lambda holder: (
            f"another clcdeploy bench (pid {holder}) is using {key}: two benchmarks on one device time each other; "
            f"wait for it to finish")):
        yield
