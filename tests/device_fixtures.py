"""Shared fixtures and helpers for the device tests: endpoints on free ports, tiny models built by hand."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from clcdeploy.device.adb import parse_shell_v2
from clcdeploy.device.keys import ensure_adb_key
from clcdeploy.device.virtual import daemon
from clcdeploy.device.virtual.protocol import CLSE, CNXN, HEADER, OKAY, OPEN, WRTE, pack

# Weights of the tiny fully-connected model used for both formats: y = x @ W.T + b.
TINY_W = np.arange(12, dtype=np.float32).reshape(3, 4) / 10.0
TINY_B = np.array([0.5, -1.0, 2.0], dtype=np.float32)
TINY_X = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
TINY_Y = TINY_X @ TINY_W.T + TINY_B


@pytest.fixture
def adb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh `~/.android` for this test (a new key is generated on first use)."""
    home = tmp_path / "android-home"
    home.mkdir()
    monkeypatch.setenv("ANDROID_USER_HOME", str(home))
    return home


@contextlib.contextmanager
def endpoint(tmp_path: Path, **options) -> Iterator[daemon.Endpoint]:
    """A device endpoint on a free port (plain mode unless `plain_root=None` is given), stopped afterwards."""
    state = tmp_path / f"adbd-state-{len(list(tmp_path.glob('adbd-state-*')))}"
    state.mkdir()
    if "plain_root" not in options:
        root = tmp_path / "device-root"
        (root / "data/local/tmp").mkdir(parents=True, exist_ok=True)
        options["plain_root"] = root
    ep = daemon.start(port=0, state_dir=state, keys_dir=options.pop("keys_dir", state), log=lambda _m: None, **options)
    try:
        yield ep
    finally:
        daemon.stop(state_dir=state)
        assert not daemon._alive(ep.pid), "endpoint still running after stop"


@pytest.fixture
def cli_env(tmp_path: Path, adb_home: Path) -> dict[str, str]:
    """Environment for `clcdeploy` subprocesses: this test's cache folder (run folder, pidfiles) and ADB key
    (made here, so the commands do not announce a new key)."""
    ensure_adb_key(adb_home / "adbkey")
    # A rootfs build in this empty cache (a command that should have refused first) fails fast, not downloads.
    return dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), ANDROID_USER_HOME=str(adb_home),
                CLCDEPLOY_DEBIAN_MIRROR="http://127.0.0.1:1/debian")


@contextlib.contextmanager
def registered_endpoint(tmp_path: Path, cli_env: dict[str, str], **options) -> Iterator[daemon.Endpoint]:
    """A plain endpoint in `cli_env`'s run folder, as `clcdeploy device start` leaves one, stopped afterwards."""
    run = Path(cli_env["XDG_CACHE_HOME"]) / "clcdeploy/virtual-device/run"
    root = tmp_path / "device-root"
    (root / "data/local/tmp").mkdir(parents=True, exist_ok=True)
    ep = daemon.start(port=0, state_dir=run, keys_dir=run, plain_root=root, log=lambda _m: None, **options)
    try:
        yield ep
    finally:
        daemon.stop(state_dir=run)


@pytest.fixture
def plain_endpoint(tmp_path: Path, adb_home: Path) -> Iterator[daemon.Endpoint]:
    with endpoint(tmp_path) as ep:
        yield ep


@pytest.fixture(scope="session")
def virtual_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[daemon.Endpoint]:
    """The real virtual ARM64 device (rootfs built on first use), on a free port for this session."""
    tmp = tmp_path_factory.mktemp("virtual-device")
    old = os.environ.get("ANDROID_USER_HOME")
    os.environ["ANDROID_USER_HOME"] = str(tmp / "android-home")
    try:
        with endpoint(tmp, plain_root=None) as ep:
            yield ep
    finally:
        if old is None:
            os.environ.pop("ANDROID_USER_HOME", None)
        else:
            os.environ["ANDROID_USER_HOME"] = old


@contextlib.contextmanager
def tcp_server(answer: bytes | None) -> Iterator[str]:
    """A TCP server that is not ADB: it sends `answer` to every client and closes (None: stays silent)."""
    listener = socket.create_server(("127.0.0.1", 0))
    clients: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            clients.append(conn)
            if answer is not None:
                conn.recv(4096)
                conn.sendall(answer)
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        listener.close()
        for conn in clients:
            conn.close()


@pytest.fixture
def http_server() -> Iterator[str]:
    """host:port of a server answering every request with HTTP 400."""
    with tcp_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as serial:
        yield serial


# --- a raw ADB client for malformed-input and multi-stream tests ------------------------------------------
class RawAdb:
    """Bare-socket ADB client speaking to an endpoint started with auth="none"."""

    def __init__(self, serial: str, timeout_s: float = 20.0) -> None:
        host, port = serial.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self.packets_read = 0  # packets received from the device so far

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, command: int, arg0: int, arg1: int, payload: bytes = b"") -> None:
        self.sock.sendall(pack(command, arg0, arg1, payload))

    def recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def read(self) -> tuple[int, int, int, bytes]:
        command, arg0, arg1, length, _check, _magic = HEADER.unpack(self.recv_exact(HEADER.size))
        payload = self.recv_exact(length) if length else b""
        self.packets_read += 1
        return command, arg0, arg1, payload

    def handshake(self) -> bytes:
        self.send(CNXN, 0x01000001, 256 * 1024, b"host::raw\0")
        command, _, _, payload = self.read()
        assert command == CNXN, f"expected CNXN, got {command:08x} (start the endpoint with auth='none')"
        return payload

    def is_closed(self) -> bool:
        """True once the server has closed the connection (EOF or reset)."""
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        self.sock.close()


def shell_v2_collect(raw: RawAdb, streams: dict[int, str]) -> dict[int, tuple[bytes, int | None]]:
    """Open one shell,v2 stream per local id, answer every WRTE with OKAY, gather output and exit codes."""
    for local_id, command in streams.items():
        raw.send(OPEN, local_id, 0, f"shell,v2,raw:{command}\0".encode())
    data = {i: b"" for i in streams}
    remote = {}
    open_ids = set(streams)
    while open_ids:
        command, arg0, arg1, payload = raw.read()
        if command == OKAY:
            remote[arg1] = arg0
        elif command == WRTE:
            data[arg1] += payload
            raw.send(OKAY, arg1, arg0)
        elif command == CLSE:
            open_ids.discard(arg1)
            raw.send(CLSE, arg1, arg0)
    return {i: _stdout_and_exit(blob) for i, blob in data.items()}


def _stdout_and_exit(blob: bytes) -> tuple[bytes, int | None]:
    """Stdout and exit status of a shell v2 stream's bytes."""
    stdout, _stderr, code = parse_shell_v2(blob)
    return stdout, code


def shell_v2_session(raw: RawAdb, service: str, packets: list[tuple[int, bytes]]) -> tuple[bytes, int | None]:
    """Open `service`, send each shell v2 packet (id, data) in its own WRTE, then gather stdout and the exit
    status until the device closes the stream."""
    raw.send(OPEN, 1, 0, service.encode() + b"\0")
    command, remote, _, _ = raw.read()
    assert command == OKAY, f"{service!r} refused"
    blob, pending = b"", list(packets)
    can_write = True
    while True:
        if pending and can_write:
            kind, data = pending.pop(0)
            raw.send(WRTE, 1, remote, struct.pack("<BI", kind, len(data)) + data)
            can_write = False
        command, arg0, _, payload = raw.read()
        if command == OKAY:
            can_write = True
        elif command == WRTE:
            blob += payload
            raw.send(OKAY, 1, arg0)
        elif command == CLSE:
            raw.send(CLSE, 1, arg0)
            return _stdout_and_exit(blob)


# --- tiny models ----------------------------------------------------------------------------------------
def make_tiny_onnx(path: Path) -> Path:
    """Gemm(x, W, b) with the onnx helper API: input x[1,4] -> y[1,3]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(TINY_W, "W"), numpy_helper.from_array(TINY_B, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_tiny_tflite(path: Path) -> Path:
    """FULLY_CONNECTED(x, W, b) written with the LiteRT flatbuffer schema: x[1,4] -> y[1,3]."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    def buffer(data: bytes | None) -> "s.BufferT":
        b = s.BufferT()
        b.data = list(data) if data else None
        return b

    def tensor(name: str, shape: list[int], buf: int) -> "s.TensorT":
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, s.TensorType.FLOAT32, buf
        return t

    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = s.FullyConnectedOptionsT()
    sub = s.SubGraphT()
    sub.tensors = [tensor("x", [1, 4], 1), tensor("W", [3, 4], 2), tensor("b", [3], 3), tensor("y", [1, 3], 4)]
    sub.inputs, sub.outputs, sub.operators, sub.name = [0], [3], [op], "main"
    code = s.OperatorCodeT()
    code.builtinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    model = s.ModelT()
    model.version, model.description = 3, "tiny"
    model.operatorCodes, model.subgraphs = [code], [sub]
    model.buffers = [buffer(None), buffer(None), buffer(TINY_W.tobytes()), buffer(TINY_B.tobytes()), buffer(None)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def pte_runner_input(shape: tuple[int, ...]) -> np.ndarray:
    """The input clcdeploy's pte_runner feeds a float tensor: the ramp (i % 97) / 48.5 - 1 over its elements,
    computed in float32 as the runner does."""
    ramp = (np.arange(int(np.prod(shape))) % 97).astype(np.float32) / np.float32(48.5) - np.float32(1.0)
    return ramp.reshape(shape)


def make_tiny_pte(path: Path) -> Path:
    """A tiny conv+linear module lowered to XNNPACK with executorch (host torch)."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

    torch.manual_seed(0)
    exported = torch.export.export(Tiny().eval(), (torch.randn(1, 3, 8, 8),))
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(program.buffer)
    return path


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs: bound (so no other program can
    take it in the meantime, as it could a port found free and released) but not listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def stock_adb() -> str | None:
    return shutil.which("adb")


@contextlib.contextmanager
def stock_adb_client(tmp_path: Path) -> Iterator:
    """`adb(*args, **run_options)` running the stock client with its own home and server port; the server is
    killed afterwards."""
    import subprocess

    home = tmp_path / "adb-home"
    (home / ".android").mkdir(parents=True, exist_ok=True)
    # The server's port stays reserved until the end: bound with SO_REUSEADDR and not listening, it is skipped
    # when another program asks for a free port, while the adb server (which binds with SO_REUSEADDR too) can
    # still listen on it. Found free and released, another program could take it before the server starts.
    reserved = socket.socket()
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.bind(("127.0.0.1", 0))
    server_port = reserved.getsockname()[1]
    env = dict(os.environ, HOME=str(home), ANDROID_USER_HOME=str(home / ".android"),
               ANDROID_ADB_SERVER_PORT=str(server_port))

    def adb(*args: str, **options) -> subprocess.CompletedProcess:
        options = {"capture_output": True, "text": True, "timeout": 120, **options}
        return subprocess.run(["adb", *args], env=env, **options)

    def connect(serial: str) -> None:
        """`adb connect`, then wait for the device state: a new client key leaves the device unauthorized for a
        moment (until it takes the key, as a phone once its prompt is accepted), and commands fail meanwhile."""
        adb("connect", serial)
        adb("-s", serial, "wait-for-device", timeout=60)

    adb.env, adb.connect = env, connect
    try:
        yield adb
    finally:
        adb("kill-server")
        reserved.close()
