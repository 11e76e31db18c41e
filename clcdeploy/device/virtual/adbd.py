"""Device-side ADB endpoint over TCP: the part of Android's adbd that hosts need, for the virtual device.

One thread reads each connection's packets; each stream's service runs in its own thread. Services:
`shell:`, `exec:`, `shell,v2[,opts]:` (shell_service: exit status, a pty as adbd decides), `sync:`
(sync_service: STAT, LIST, SEND, RECV, QUIT), `tcp:` (tcp_service: `adb forward tcp:L tcp:R`) and the answers
to `root:` and `unroot:`. Shell commands run in the device's userland (chroot into the arm64 rootfs, or the
host shell in `plain` mode for protocol tests). A broken packet closes that connection only.

Run: `python -m clcdeploy.device.virtual.adbd --port 5555 --root ROOTFS --state-dir DIR`.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import secrets
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from clcdeploy.device.virtual import emulation, tcp_service
from clcdeploy.device.virtual.protocol import (AUTH, AUTH_RSAPUBLICKEY, AUTH_SIGNATURE, AUTH_TOKEN, CLSE, CNXN,
                                               HEADER, MAX_HANDSHAKE_PAYLOAD, MAX_PAYLOAD, OKAY, OPEN,
                                               VERSION_MIN, VERSION_SKIP_CHECKSUM, WRTE, AndroidPublicKey,
                                               ProtocolError, StreamClosed, pack, parse_header, verify_checksum)
from clcdeploy.device.virtual.shell_service import shell_legacy, shell_v2
from clcdeploy.device.virtual.sync_service import sync_service

log = logging.getLogger("clcdeploy.adbd")

FEATURES = "shell_v2"


@dataclass
class ServerConfig:
    root: Path
    state_dir: Path
    auth: str = "accept"  # accept new keys | refuse new keys | none (no AUTH at all)
    plain: bool = False  # run commands with the host's /bin/sh in `root` instead of chroot + qemu
    drop_after_bytes: int | None = None  # fault injection: close a connection after N bytes (in + out)
    latency_s: float = 0.0  # fault injection: delay before every packet sent
    shell_v2: bool = True  # False: an adbd before Android 7 (legacy shell on a pty, no exit statuses)
    banner_props: dict[str, str] = field(default_factory=dict)

    @property
    def keys_file(self) -> Path:
        return self.state_dir / "adb_keys"


class Connection:
    """One host connection: handshake state, streams and the socket writer."""

    def __init__(self, sock: socket.socket, config: ServerConfig, peer: str) -> None:
        self.sock = sock
        self.config = config
        self.peer = peer
        self.version = VERSION_MIN
        self.max_payload = MAX_PAYLOAD
        self.online = False
        self.token = b""
        self.closed = threading.Event()
        self._send_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._bytes_moved = 0
        self._next_id = 1
        self.streams: dict[int, Stream] = {}

    # --- sending -----------------------------------------------------------------------------------------
    def send(self, command: int, arg0: int, arg1: int, payload: bytes = b"") -> None:
        if self.closed.is_set():
            raise ConnectionError("connection closed")
        data = pack(command, arg0, arg1, payload)
        with self._send_lock:
            if self.config.latency_s:
                time.sleep(self.config.latency_s)
            allowed = self._account(len(data))
            try:
                self.sock.sendall(data[:allowed])
            except OSError as exc:
                self.shutdown()
                raise ConnectionError(str(exc)) from exc
            if allowed < len(data):
                self._drop()

    def _account(self, nbytes: int) -> int:
        """Fault injection: how many of the next `nbytes` may still cross the connection (both directions)."""
        with self._count_lock:
            limit = self.config.drop_after_bytes
            allowed = nbytes if limit is None else max(0, min(nbytes, limit - self._bytes_moved))
            self._bytes_moved += allowed
            return allowed

    def _drop(self) -> None:
        log.info("%s: fault injection: dropping the connection after %d bytes", self.peer, self._bytes_moved)
        self.shutdown()
        raise ConnectionError("connection dropped by fault injection")

    def shutdown(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for stream in list(self.streams.values()):
            stream.abort()

    # --- reading -----------------------------------------------------------------------------------------
    def _read_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def serve(self) -> None:
        try:
            while not self.closed.is_set():
                limit = self.max_payload if self.online else MAX_HANDSHAKE_PAYLOAD
                command, arg0, arg1, length, check = parse_header(self._read_exact(HEADER.size), max(limit, MAX_HANDSHAKE_PAYLOAD))
                payload = self._read_exact(length) if length else b""
                if self._account(HEADER.size + length) < HEADER.size + length:
                    self._drop()
                # A CNXN may declare the version that lets it skip its checksum: the stock adb server, reconnecting
                # to a restarted device, sends one with the version it had negotiated before.
                verify_checksum(payload, check, max(self.version, arg0) if command == CNXN else self.version)
                self.dispatch(command, arg0, arg1, payload)
        except ProtocolError as exc:
            log.warning("%s: closing connection: %s", self.peer, exc)
        except (EOFError, ConnectionError, OSError):
            pass
        finally:
            self.shutdown()
            try:
                self.sock.close()
            except OSError:
                pass

    # --- packets -----------------------------------------------------------------------------------------
    def dispatch(self, command: int, arg0: int, arg1: int, payload: bytes) -> None:
        if command == CNXN:
            self.version = max(VERSION_MIN, min(arg0, VERSION_SKIP_CHECKSUM))
            self.max_payload = max(MAX_HANDSHAKE_PAYLOAD, min(arg1, MAX_PAYLOAD))
            self.online = False
            if self.config.auth == "none":
                self.send_banner()
            else:
                self.send_token()
        elif command == AUTH:
            self.handle_auth(arg0, payload)
        elif not self.online:
            raise ProtocolError(f"{command:08x} before the connection was authenticated")
        elif command == OPEN:
            self.open_stream(arg0, payload)
        elif command in (OKAY, WRTE, CLSE):
            stream = self.streams.get(arg1)
            if stream is None:
                if command == WRTE:  # data for a stream that is gone: tell the host it is closed
                    self.send(CLSE, 0, arg0)
                return
            if command == OKAY:
                stream.on_okay(arg0)
            elif command == WRTE:
                stream.on_write(payload)
                self.send(OKAY, stream.local_id, stream.remote_id)
            else:
                stream.on_close()
        else:
            raise ProtocolError(f"unexpected command {command:08x}")

    def send_token(self) -> None:
        self.token = secrets.token_bytes(20)
        self.send(AUTH, AUTH_TOKEN, 0, self.token)

    def send_banner(self) -> None:
        props = "".join(f"{k}={v};" for k, v in self.config.banner_props.items())
        self.online = True
        features = FEATURES if self.config.shell_v2 else ""
        self.send(CNXN, self.version, self.max_payload, f"device::{props}features={features}".encode())

    def trusted_keys(self) -> list[AndroidPublicKey]:
        keys = []
        if self.config.keys_file.exists():
            for line in self.config.keys_file.read_text().splitlines():
                try:
                    keys.append(AndroidPublicKey.parse(line))
                except ValueError:
                    continue
        return keys

    def handle_auth(self, kind: int, payload: bytes) -> None:
        if not self.token:
            raise ProtocolError("AUTH before CNXN")
        if kind == AUTH_SIGNATURE:
            if any(key.verify(self.token, payload) for key in self.trusted_keys()):
                log.info("%s: authenticated with a trusted key", self.peer)
                self.send_banner()
            else:
                self.send_token()
        elif kind == AUTH_RSAPUBLICKEY:
            try:
                key = AndroidPublicKey.parse(payload)
            except ValueError as exc:
                raise ProtocolError(f"bad public key: {exc}") from exc
            if self.config.auth != "accept":
                # Like a phone whose user pressed "Deny": no answer; the host gives up on its own.
                log.info("%s: refusing new key %s", self.peer, key.fingerprint)
                return
            log.info("%s: accepting new key %s (%s)", self.peer, key.fingerprint, key.comment)
            self.config.keys_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.config.keys_file, "a") as fh:
                fh.write(payload.rstrip(b"\0").decode("ascii", "replace").strip() + "\n")
            self.send_banner()
        else:
            raise ProtocolError(f"unknown AUTH type {kind}")

    def open_stream(self, remote_id: int, payload: bytes) -> None:
        service = payload.rstrip(b"\0").decode("utf-8", "replace")
        handler = service_for(service)
        if handler is shell_v2 and not self.config.shell_v2:
            handler = None
        if handler is None or remote_id == 0:
            self.refuse(remote_id, service)
            return
        local_id = self._next_id
        self._next_id += 1
        if handler is tcp_service.relay:  # connecting may take seconds: not on this connection's reader thread
            threading.Thread(target=self._open_tcp, args=(local_id, remote_id, service), daemon=True,
                             name=f"adbd-connect-{local_id}").start()
            return
        self._start(local_id, remote_id, handler, service)

    def refuse(self, remote_id: int, service: str) -> None:
        log.info("%s: refusing service %r", self.peer, service)
        self.send(CLSE, 0, remote_id)

    def _start(self, local_id: int, remote_id: int, handler, service: str) -> None:
        stream = Stream(self, local_id, remote_id)
        self.streams[local_id] = stream
        self.send(OKAY, local_id, remote_id)
        threading.Thread(target=stream.run, args=(handler, service), daemon=True,
                         name=f"adbd-stream-{local_id}").start()

    def _open_tcp(self, local_id: int, remote_id: int, service: str) -> None:
        """As adbd, connect before the OKAY: a port nobody listens on refuses the stream."""
        sock = tcp_service.connect(service)
        try:
            if sock is None:
                self.refuse(remote_id, service)
            else:
                self._start(local_id, remote_id, partial(tcp_service.relay, sock), service)
        except ConnectionError:  # the host went away meanwhile
            if sock is not None:
                sock.close()


class Stream:
    """One OPENed service: inbox of WRTE payloads, and a writer that waits for OKAY between WRTEs."""

    def __init__(self, conn: Connection, local_id: int, remote_id: int) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self._can_write = threading.Event()
        self._can_write.set()
        self.closed = threading.Event()
        self._closed_sent = False
        self._buffer = bytearray()
        self.process: subprocess.Popen | None = None

    # called by the connection's reader thread
    def on_okay(self, remote_id: int) -> None:
        self.remote_id = remote_id
        self._can_write.set()

    def on_write(self, data: bytes) -> None:
        self.inbox.put(data)

    def on_close(self) -> None:
        self.abort()
        self.send_close()

    def abort(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.inbox.put(None)
            self._can_write.set()
            if self.process is not None and self.process.poll() is None:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:  # not yet its own group (`setsid` has not run yet)
                    self.process.kill()
                except OSError:
                    pass

    def send_close(self) -> None:
        if not self._closed_sent:
            self._closed_sent = True
            self.conn.streams.pop(self.local_id, None)
            try:
                self.conn.send(CLSE, self.local_id, self.remote_id)
            except ConnectionError:
                pass

    # called by the service thread
    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self._can_write.wait()
            if self.closed.is_set():
                raise StreamClosed
            chunk = bytes(view[: self.conn.max_payload])
            view = view[len(chunk):]
            self._can_write.clear()
            try:
                self.conn.send(WRTE, self.local_id, self.remote_id, chunk)
            except ConnectionError as exc:
                raise StreamClosed from exc

    def read_some(self) -> bytes:
        """Next bytes from the host; b"" once the stream is closed."""
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        data = self.inbox.get()
        if data is None:
            self.inbox.put(None)
            return b""
        return data

    def read_exact(self, n: int) -> bytes:
        while len(self._buffer) < n:
            data = self.inbox.get()
            if data is None:
                self.inbox.put(None)
                raise StreamClosed
            self._buffer += data
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    def run(self, handler, service: str) -> None:
        try:
            handler(self, service)
        except StreamClosed:
            pass
        except Exception:  # a service bug must not take the server down
            log.exception("service %r failed", service)
        finally:
            self.abort()
            self.send_close()


# --- services -----------------------------------------------------------------------------------------------
def service_for(service: str):
    if service.startswith("shell,v2") or (service.startswith("shell,") and ":" in service):
        return shell_v2 if ",v2" in service.split(":", 1)[0] else shell_legacy
    if service.startswith("shell:") or service.startswith("exec:"):
        return shell_legacy
    if service == "sync:":
        return sync_service
    if service.startswith("tcp:"):
        return tcp_service.relay  # takes the connection first: see Connection._open_tcp
    if service in ROOT_REPLIES:
        return _reply_root
    return None


# `adb root` / `adb unroot`: the endpoint runs its shells as root and cannot drop that (the chroot needs it),
# so it answers as a phone's adbd does when there is nothing to restart.
ROOT_REPLIES = {"root:": b"adbd is already running as root\n",
                "unroot:": b"adbd cannot run as non-root on the virtual device\n"}


def _reply_root(stream: Stream, service: str) -> None:
    stream.write(ROOT_REPLIES[service])


# --- server ------------------------------------------------------------------------------------------------
class AdbServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: ServerConfig) -> None:
        self.config = config
        self.connections: set[Connection] = set()
        super().__init__(address, _Handler)

    def server_close(self) -> None:
        for conn in list(self.connections):
            conn.shutdown()
        super().server_close()


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(self.request, self.server.config, f"{self.client_address[0]}:{self.client_address[1]}")
        self.server.connections.add(conn)
        try:
            conn.serve()
        finally:
            self.server.connections.discard(conn)


def setup_mounts(root: Path) -> None:
    """In a private mount namespace: /proc, /sys, /dev inside the rootfs, and the emulated CPU's cpuinfo."""
    def mount(*args: str) -> None:
        subprocess.run(["mount", *args], check=False, capture_output=True)

    mount("-t", "proc", "proc", str(root / "proc"))
    mount("-t", "sysfs", "sysfs", str(root / "sys"))
    mount("--rbind", "/dev", str(root / "dev"))
    cpuinfo = root / "etc/clcdeploy/cpuinfo"
    if cpuinfo.exists():
        mount("--bind", str(cpuinfo), str(root / "proc/cpuinfo"))


def read_build_prop(root: Path) -> dict[str, str]:
    props = {}
    path = root / "system/build.prop"
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                props[key] = value
    return {k: props[k] for k in ("ro.product.name", "ro.product.model", "ro.product.device") if k in props}


def _unignore_signals() -> None:
    """Shells inherit ignored signals: started from a process that ignores SIGINT (a script's background job) or
    SIGHUP (nohup), Ctrl-C on a pty would interrupt nothing in them. A phone's shells start with the defaults.
    SIGPIPE and SIGXFSZ stay as Python set them; subprocess restores them in children."""
    for signum in signal.valid_signals():
        if signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(signum) == signal.SIG_IGN:
                signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
        except (OSError, ValueError):  # signals Python cannot handle
            continue


def main(argv: list[str] | None = None) -> int:
    _unignore_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5555)
    parser.add_argument("--root", type=Path, required=True, help="the device's root folder (rootfs)")
    parser.add_argument("--state-dir", type=Path, required=True, help="where adb_keys is kept")
    parser.add_argument("--auth", choices=("accept", "refuse", "none"), default="accept")
    parser.add_argument("--plain", action="store_true", help="run commands with the host shell (protocol tests)")
    parser.add_argument("--mount-namespace", action="store_true",
                        help="this process has a private mount namespace: mount /proc, /sys, /dev in the rootfs")
    parser.add_argument("--no-shell-v2", action="store_true",
                        help="legacy shell only, like an adbd before Android 7 (every shell command on a pty)")
    parser.add_argument("--drop-after-bytes", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--ready-file", type=Path, help="written with the port once listening")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    root = args.root.resolve()
    if not args.plain:
        emulation.ensure_binfmt()
        if args.mount_namespace:
            setup_mounts(root)
    config = ServerConfig(root=root, state_dir=args.state_dir, auth=args.auth, plain=args.plain,
                          drop_after_bytes=args.drop_after_bytes, latency_s=args.latency_ms / 1000.0,
                          shell_v2=not args.no_shell_v2,
                          banner_props=read_build_prop(root))
    try:
        server = AdbServer((args.host, args.port), config)
    except OSError as exc:  # the exit status tells the starting process why (errno.EADDRINUSE: port taken)
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return exc.errno if isinstance(exc.errno, int) and 0 < exc.errno < 126 else 1
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    port = server.server_address[1]
    log.info("adbd listening on %s:%d (root %s)", args.host, port, root)
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(f"{port}\n")
        os.replace(tmp, args.ready_file)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
