"""`tcp:PORT` and `tcp:HOST:PORT`, the service behind `adb forward tcp:L tcp:PORT`: the host's adb server opens
one stream per connection it accepts, and the device connects to PORT on its own side (the virtual device's
userland shares the host's network, so that is this host's PORT) and relays bytes both ways until either side
closes. As adbd does, a port nobody listens on refuses the stream (CLSE instead of OKAY), which the adb
client's side sees as a closed connection."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clcdeploy.device.virtual.adbd import Stream

CONNECT_TIMEOUT_S = 5.0


def target(service: str) -> tuple[str, int] | None:
    """(host, port) a `tcp:` service names, or None when it is not one we can connect to."""
    host, _, port = service.removeprefix("tcp:").rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host or "localhost", int(port)


def connect(service: str) -> socket.socket | None:
    """The connection a `tcp:` stream relays, or None when nothing accepts it."""
    address = target(service)
    if address is None:
        return None
    try:
        sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT_S)
    except OSError:
        return None
    sock.settimeout(None)
    return sock


def relay(sock: socket.socket, stream: Stream, service: str) -> None:
    """Bytes both ways between the stream and `sock` until either side ends; then both are closed."""

    def host_to_device() -> None:
        try:
            while data := stream.read_some():
                sock.sendall(data)
        except OSError:
            pass
        finally:  # the host closed the stream (an ADB stream has no half-close): end the relay below too
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    threading.Thread(target=host_to_device, daemon=True, name=f"adbd-{service}").start()
    try:
        while data := sock.recv(65536):
            stream.write(data)
    except OSError:
        pass
    finally:
        sock.close()
