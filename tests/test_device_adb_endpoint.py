"""adb-shell and raw sockets against the device-side ADB endpoint in plain mode (host shell, no emulation).

Real processes and real TCP on loopback: the endpoint runs as a separate process on a free port.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clcdeploy.device import open_device
from clcdeploy.device.adb import AdbDevice
from clcdeploy.device.errors import (AuthenticationError, CommandTimeoutError, ConnectionLostError,
                                     StorageFullError, TransferError, UnknownDeviceError)
from clcdeploy.device.virtual.protocol import CNXN, OPEN, HEADER, AndroidPublicKey, pack
from android_shell_fixtures import android_5_shell, fake_android  # noqa: F401  (fixtures)
from device_fixtures import (RawAdb, adb_home, endpoint, plain_endpoint, refusing_port,  # noqa: F401
                             shell_v2_collect, shell_v2_session, stock_adb, stock_adb_client)


def _work(ep) -> str:
    return f"{ep.root}/data/local/tmp"


def test_shell_returns_stdout_stderr_and_exit_status(plain_endpoint) -> None:
    with open_device(plain_endpoint.serial, auth_timeout_s=10) as dev:
        result = dev.shell("echo out; echo err >&2; exit 3")
        assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 3)
        assert dev.shell("true").exit_code == 0
        with pytest.raises(Exception, match="exit status 3"):
            result.check("the test command")


def test_legacy_shell_recovers_exit_status_with_a_marker(tmp_path, adb_home) -> None:
    with endpoint(tmp_path, shell_v2=False) as ep, open_device(ep.serial, auth_timeout_s=10) as dev:
        result = dev.shell("echo hello; exit 5")
        assert dev._shell_v2 is False
        assert result.exit_code == 5 and result.stdout == "hello\n"
        assert dev.shell("echo fine").exit_code == 0


def test_push_pull_multi_megabyte_file_keeps_sha256(plain_endpoint, tmp_path) -> None:
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    seen = []
    with open_device(plain_endpoint.serial) as dev:
        remote = f"{_work(plain_endpoint)}/sub/blob.bin"
        dev.push(src, remote, progress=lambda path, n, total: seen.append((n, total)))
        assert sum(n for n, _ in seen) == src.stat().st_size
        assert dev.remote_digest(remote) == ("sha256", hashlib.sha256(src.read_bytes()).hexdigest())
        dst = tmp_path / "back.bin"
        dev.pull(remote, dst)
        assert dst.read_bytes() == src.read_bytes()
        assert dev.remote_digest(f"{_work(plain_endpoint)}/absent") is None


def _android_hash_commands(folder: Path, commands: dict[str, str | None]) -> str:
    """A PATH whose first folder has the given hash commands: None = the device lacks it (the shell's "not
    found", 127), else the host command that stands in for it (toolbox's `md5` prints what md5sum prints)."""
    import shutil

    folder.mkdir()
    for name, real in commands.items():
        script = folder / name
        script.write_text(f'#!/bin/sh\nexec {shutil.which(real)} "$@"\n' if real else
                          f'#!/bin/sh\necho "sh: {name}: not found" >&2\nexit 127\n')
        script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.parametrize("commands, algorithm", [
    ({"sha256sum": None}, "sha1"),  # toybox built without its crypto library: sha1sum, md5sum
    ({"sha256sum": None, "sha1sum": None, "md5sum": None, "md5": "md5sum"}, "md5"),  # Android 5's toolbox
])
def test_transfers_are_checked_with_the_hash_command_the_device_has(tmp_path, adb_home, monkeypatch, commands,
                                                                    algorithm) -> None:
    from clcdeploy.bench.runners import push_if_changed

    monkeypatch.setenv("PATH", _android_hash_commands(tmp_path / "bin", commands))  # the endpoint's shells inherit it
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(300_000))
    with endpoint(tmp_path) as ep, open_device(ep.serial) as dev:
        remote = f"{_work(ep)}/model.bin"
        dev.push(src, remote)
        assert dev.remote_digest(remote) == (algorithm, hashlib.new(algorithm, src.read_bytes()).hexdigest())
        dev.pull(remote, tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
        assert push_if_changed(dev, src, remote) is False  # the same content is there: not pushed again
        dev.shell(f"echo changed >> {remote}").check("changing the device's copy")
        assert push_if_changed(dev, src, remote) is True
        assert dev.remote_digest(remote).matches(src)


def test_a_device_without_any_hash_command_is_one_clear_error(tmp_path, adb_home, monkeypatch) -> None:
    from clcdeploy.device.errors import DeviceError

    monkeypatch.setenv("PATH", _android_hash_commands(tmp_path / "bin", dict.fromkeys(["sha256sum", "sha1sum",
                                                                                        "md5sum", "md5"])))
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    with endpoint(tmp_path) as ep, open_device(ep.serial) as dev:
        with pytest.raises(DeviceError, match=f"^{re.escape(ep.serial)} has none of sha256sum, sha1sum, md5sum, md5 "
                                              f"to check .*model.bin with: install toybox or busybox on it$"):
            dev.push(src, f"{_work(ep)}/model.bin")


def test_a_device_without_shell_v2_runs_commands_on_a_pty_as_old_adbds_did(tmp_path, adb_home) -> None:
    """adbd before Android 7 (no shell v2) ran every `shell:` command on a pty: stderr in the output, CR LF line
    ends (our client turns them back into LF)."""
    with endpoint(tmp_path, shell_v2=False) as ep, open_device(ep.serial) as dev:
        result = dev.shell("tty; echo to-stderr >&2; exit 3")
    assert re.fullmatch(r"/dev/pts/\d+\nto-stderr\n", result.stdout) and result.exit_code == 3, result


def test_facts_of_an_android_5_phone_over_its_pty_shell(android_5_shell, tmp_path, adb_home) -> None:
    """Android 5: no uname, no nproc, and its adbd merges stderr into the output the facts are parsed from."""
    from clcdeploy.device.facts import count_cpus

    with endpoint(tmp_path, shell_v2=False) as ep, open_device(ep.serial) as dev:
        facts = dev.facts()
        src = tmp_path / "model.bin"
        src.write_bytes(os.urandom(100_000))
        dev.push(src, f"{_work(ep)}/model.bin")  # checked with toolbox's md5
        assert dev.remote_digest(f"{_work(ep)}/model.bin").algorithm == "md5"
    assert (facts.android_version, facts.abi, facts.kernel_machine) == ("5.1", "armeabi-v7a", "")
    with open("/sys/devices/system/cpu/present") as present:
        assert facts.cores == count_cpus(present.read()) and 1 <= facts.cores_online <= facts.cores


@pytest.mark.parametrize("sdk, v2", [("22", False), ("30", True)])
def test_the_shell_protocol_follows_the_android_version(android_5_shell, tmp_path, adb_home, sdk, v2) -> None:
    """Shell v2 came with Android 7 (SDK 24): getprop decides, without the v2 probe that an Android 5 or 6 phone
    answers only after its timeout. This endpoint speaks v2 either way, so a legacy choice came from getprop."""
    getprop = android_5_shell / "bin" / "getprop"
    getprop.write_text(getprop.read_text().replace("version.sdk) echo 22", f"version.sdk) echo {sdk}"))
    with endpoint(tmp_path) as ep, open_device(ep.serial) as dev:
        assert dev._supports_shell_v2() is v2
        result = dev.shell("echo hi; exit 3")
    assert (result.stdout, result.exit_code) == ("hi\n", 3)


def test_stat_and_list(plain_endpoint) -> None:
    work = Path(_work(plain_endpoint))
    (work / "a.txt").write_text("12345")
    (work / "dir").mkdir()
    with open_device(plain_endpoint.serial) as dev:
        assert isinstance(dev, AdbDevice)
        mode, size, _mtime = dev.stat(str(work / "a.txt"))
        assert size == 5 and mode & 0o170000 == 0o100000
        assert dev.stat(str(work / "missing"))[0] == 0
        assert {"a.txt", "dir"} <= set(dev.listdir(str(work)))


def test_new_key_is_accepted_once_then_signature_auth(plain_endpoint, adb_home) -> None:
    with open_device(plain_endpoint.serial):
        pass
    key = adb_home / "adbkey"
    assert key.exists() and (adb_home / "adbkey.pub").exists()
    trusted = Path(plain_endpoint.log).parent / "adb_keys"
    lines = trusted.read_text().splitlines()
    ours = AndroidPublicKey.parse((adb_home / "adbkey.pub").read_text())
    assert [AndroidPublicKey.parse(line).n for line in lines] == [ours.n]
    with open_device(plain_endpoint.serial) as dev:  # second time: token signature, no new key
        assert dev.shell("echo again").stdout == "again\n"
    assert len(trusted.read_text().splitlines()) == 1
    assert "authenticated with a trusted key" in Path(plain_endpoint.log).read_text()


def test_refused_key_is_an_authentication_error(tmp_path, adb_home) -> None:
    with endpoint(tmp_path, auth="refuse") as ep:
        with pytest.raises(AuthenticationError, match="did not accept our key"):
            open_device(ep.serial, auth_timeout_s=1.5)


def test_unknown_tcp_serial(adb_home) -> None:
    with refusing_port() as port, pytest.raises(UnknownDeviceError, match="no ADB device.*available: local"):
        open_device(f"127.0.0.1:{port}")


def test_command_timeout(plain_endpoint) -> None:
    dev = open_device(plain_endpoint.serial)
    with pytest.raises(CommandTimeoutError, match="did not finish within 1 s"):
        dev.shell("sleep 20", timeout_s=1)
    assert dev.shell("echo reconnected").stdout == "reconnected\n"  # a fresh connection after the timeout
    dev.close()


def test_sync_path_outside_the_root_is_refused(plain_endpoint, tmp_path) -> None:
    with open_device(plain_endpoint.serial) as dev:
        with pytest.raises(TransferError, match="outside the device root"):
            _pull_raw(dev, "/etc/hostname", tmp_path)
        assert dev.stat("/etc/hostname")[0] == 0  # STAT v1 has no FAIL: outside the root looks absent
        assert dev.listdir("/etc") == []
        with pytest.raises(TransferError, match="outside the device root"):
            _push_raw(dev, tmp_path, f"{_work(plain_endpoint)}/../../../../outside.txt")
    assert not (Path(plain_endpoint.root).parent / "outside.txt").exists()


def _pull_raw(dev: AdbDevice, remote: str, tmp_path: Path) -> None:
    from adb_shell import exceptions as ex

    try:
        dev.adb.pull(remote, str(tmp_path / "pulled"))
    except ex.AdbCommandFailureException as exc:
        raise TransferError(str(exc)) from exc


def _push_raw(dev: AdbDevice, tmp_path: Path, remote: str) -> None:
    from adb_shell import exceptions as ex

    src = tmp_path / "small.txt"
    src.write_text("x")
    try:
        dev.adb.push(str(src), remote)
    except (ex.PushFailedError, ex.AdbCommandFailureException) as exc:
        raise TransferError(str(exc)) from exc


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_storage_full_is_reported(plain_endpoint, tmp_path) -> None:
    small = Path(_work(plain_endpoint)) / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        src = tmp_path / "big.bin"
        src.write_bytes(os.urandom(3 * 1024 * 1024))
        with open_device(plain_endpoint.serial) as dev:
            with pytest.raises(StorageFullError, match="out of storage"):
                dev.push(src, f"{small}/big.bin")
            assert os.listdir(small) == []  # the partial file was removed
    finally:
        subprocess.run(["umount", str(small)], check=False)


# --- malformed input and faults ---------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["magic", "checksum", "oversized"])
def test_malformed_packet_closes_only_that_connection(tmp_path, adb_home, damage) -> None:
    with endpoint(tmp_path, auth="none") as ep:
        good = RawAdb(ep.serial)
        good.handshake()
        bad = RawAdb(ep.serial, timeout_s=10)
        bad.handshake()
        payload = b"shell,v2,raw:echo hi\0"
        header = list(HEADER.unpack(pack(OPEN, 1, 0, payload)[:24]))
        if damage == "magic":
            header[5] ^= 0x1
        elif damage == "checksum":
            header[4] = (header[4] + 1) & 0xFFFFFFFF
        else:
            header[3] = 64 * 1024 * 1024
        bad.send_raw(HEADER.pack(*header) + payload)
        assert bad.is_closed()
        # The other connection still works, as do new ones.
        assert shell_v2_collect(good, {7: "echo still here"})[7] == (b"still here\n", 0)
        fresh = RawAdb(ep.serial)
        assert fresh.handshake().startswith(b"device::")
        for raw in (good, bad, fresh):
            raw.close()


def test_handshake_without_checksum_declares_its_version(tmp_path, adb_home) -> None:
    """The stock adb server reconnecting to a restarted device sends CNXN with checksum 0 and the version it
    negotiated before; one that declares an old version must still sum its payload."""
    with endpoint(tmp_path, auth="none") as ep:
        for version, accepted in ((0x01000001, True), (0x01000000, False)):
            raw = RawAdb(ep.serial, timeout_s=10)
            payload = b"host::reconnect\0"
            header = list(HEADER.unpack(pack(CNXN, version, 256 * 1024, payload)[:24]))
            header[4] = 0
            raw.send_raw(HEADER.pack(*header) + payload)
            if accepted:
                assert raw.read()[0] == CNXN
            else:
                assert raw.is_closed()
            raw.close()


def test_concurrent_streams_on_one_connection(tmp_path, adb_home) -> None:
    with endpoint(tmp_path, auth="none") as ep:
        raw = RawAdb(ep.serial)
        raw.handshake()
        results = shell_v2_collect(raw, {1: "sleep 0.3; echo one; exit 1", 2: "echo two", 3: "seq 1 20000 | tail -1"})
        assert results == {1: (b"one\n", 1), 2: (b"two\n", 0), 3: (b"20000\n", 0)}
        raw.close()


def _processes_with(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def test_client_disconnect_kills_the_running_command(tmp_path, adb_home) -> None:
    with endpoint(tmp_path, auth="none") as ep:
        raw = RawAdb(ep.serial)
        raw.handshake()
        marker = f"sleep 3{os.getpid() % 10}.5"
        raw.send(OPEN, 1, 0, f"shell,v2,raw:{marker}\0".encode())
        deadline = time.monotonic() + 10
        while not _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_with(marker), "the command never started"
        raw.close()
        deadline = time.monotonic() + 10
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _processes_with(marker), "the command outlived its client"
        again = RawAdb(ep.serial)
        again.handshake()
        assert shell_v2_collect(again, {1: "echo ok"})[1] == (b"ok\n", 0)
        again.close()


def test_connection_dropped_mid_push_names_file_and_bytes(tmp_path, adb_home) -> None:
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(2 * 1024 * 1024))
    # Enough for the handshake and the mkdir, then the connection drops about halfway through the file.
    with endpoint(tmp_path, drop_after_bytes=1024 * 1024) as ep:
        dev = open_device(ep.serial)
        with pytest.raises(ConnectionLostError, match=r"payload\.bin.*of 2097152 bytes sent"):
            dev.push(src, f"{_work(ep)}/payload.bin")
        # The endpoint notices the drop on its own thread: give it a moment to clean up.
        deadline = time.monotonic() + 10
        while [p for p in Path(_work(ep)).iterdir() if "payload" in p.name] and time.monotonic() < deadline:
            time.sleep(0.05)
        leftovers = [p for p in Path(_work(ep)).iterdir() if "payload" in p.name]
        assert leftovers == [], "an interrupted push left a partial file"
        # The endpoint itself is fine: a new connection works (until its own budget runs out).
        with open_device(ep.serial) as again:
            assert again.shell("echo alive").stdout == "alive\n"


def test_latency_injection_delays_every_packet_and_still_delivers_correct_results(tmp_path, adb_home) -> None:
    """The device waits the latency before each packet it sends. The packets of one shell stream form a chain
    (the CNXN answers ours, the OKAY our OPEN, each WRTE follows the previous one's OKAY, the CLSE the output), so
    the exchange takes at least packets x latency whatever the machine: a lower bound that noise can only help
    to meet, and that the same exchange without the delay (milliseconds in plain mode) is far below."""
    latency_s = 0.3
    with endpoint(tmp_path, auth="none", latency_ms=latency_s * 1000) as ep:
        raw = RawAdb(ep.serial)
        began = time.monotonic()
        raw.handshake()
        result = shell_v2_collect(raw, {1: "echo slow; exit 4"})
        elapsed = time.monotonic() - began
        raw.close()
        assert result == {1: (b"slow\n", 4)}
        assert raw.packets_read >= 4  # CNXN, OKAY, at least one WRTE, CLSE
        assert elapsed >= raw.packets_read * latency_s, (elapsed, raw.packets_read)
        with open_device(ep.serial) as dev:  # our client copes with a slow device
            result = dev.shell("echo slow; exit 4")
            assert (result.stdout, result.exit_code) == ("slow\n", 4)


def test_unauthenticated_open_is_rejected(tmp_path, adb_home) -> None:
    with endpoint(tmp_path) as ep:
        raw = RawAdb(ep.serial, timeout_s=10)
        raw.send(CNXN, 0x01000000, 4096, b"host::raw\0")
        assert raw.read()[0] != CNXN  # an AUTH token, not a session
        raw.send(OPEN, 1, 0, b"shell:echo sneaky\0")
        assert raw.is_closed()
        raw.close()


# --- terminals ----------------------------------------------------------------------------------------------
needs_stock_adb = pytest.mark.skipif(stock_adb() is None and not os.environ.get("CI"),
                                     reason="stock adb client not installed")


@needs_stock_adb
def test_stock_adb_gets_a_pty_when_it_asks_for_one(plain_endpoint, tmp_path) -> None:
    with stock_adb_client(tmp_path) as adb:
        adb.connect(plain_endpoint.serial)
        with_pty = adb("-s", plain_endpoint.serial, "shell", "-tt", "tty; exit 3", stdin=subprocess.DEVNULL)
        assert with_pty.returncode == 3 and re.fullmatch(r"/dev/pts/\d+", with_pty.stdout.strip()), with_pty
        for args in (["-T", "tty"], ["tty"]):  # -T, or a command without -t: no pty, as on a phone
            no_pty = adb("-s", plain_endpoint.serial, "shell", *args, stdin=subprocess.DEVNULL)
            assert (no_pty.returncode, no_pty.stdout.strip()) == (1, "not a tty"), (args, no_pty)


def _interactive_shell(adb, serial: str) -> subprocess.Popen:
    """`adb shell -tt`: an interactive shell on a pty although stdin is a pipe."""
    return subprocess.Popen(["adb", "-s", serial, "shell", "-tt"], env=adb.env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _type(proc: subprocess.Popen, line: bytes) -> None:
    proc.stdin.write(line)
    proc.stdin.flush()


def _read_until(proc: subprocess.Popen, marker: bytes, seconds: float) -> bytes:
    """What `proc` prints up to and including `marker` (or all it printed in `seconds`), read unbuffered."""
    import select

    seen, deadline = b"", time.monotonic() + seconds
    while marker not in seen and (left := deadline - time.monotonic()) > 0:
        if select.select([proc.stdout], [], [], left)[0]:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    return seen


@needs_stock_adb
def test_interactive_shell_echoes_and_ctrl_c_interrupts(plain_endpoint, tmp_path) -> None:
    """Ctrl-C goes in only once `sleep` runs (plain mode: a host process): earlier, on a loaded machine, it could
    reach the shell before the shell had started the job, and interrupt nothing."""
    with stock_adb_client(tmp_path) as adb:
        adb.connect(plain_endpoint.serial)
        proc = _interactive_shell(adb, plain_endpoint.serial)
        # Typed before the shell's first prompt, the pty's echo and the prompt interleave ("sleep 29.# 125"), as
        # on any terminal: type once the prompt is there.
        early = _read_until(proc, b"# ", seconds=60)
        _type(proc, b"sleep 29.125\n")
        deadline = time.monotonic() + 60
        while not _processes_with("29.125") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_with("29.125"), "sleep did not start"
        _type(proc, b"\x03")
        deadline = time.monotonic() + 20  # a wait, not a limit: the exit status below tells what happened
        while _processes_with("29.125") and time.monotonic() < deadline:
            time.sleep(0.05)
        # The status of the last command: 130 (128 + SIGINT) if Ctrl-C killed sleep; 0 if sleep was not
        # interrupted (the shell reads this line once sleep has run its 29 s).
        _type(proc, b"echo rc=$?; echo done-$((6*7))\nexit 7\n")
        out, _ = proc.communicate(timeout=90)
        out = early + out
        assert proc.returncode == 7, out
        assert b"29.125" in out and b"^C" in out, out  # echoed, Ctrl-C echoed
        assert b"rc=130\r\n" in out and b"done-42" in out, out  # sleep died of SIGINT, the shell went on


@needs_stock_adb
def test_interactive_legacy_shell_gets_a_pty(tmp_path, adb_home) -> None:
    with endpoint(tmp_path, shell_v2=False) as ep, stock_adb_client(tmp_path) as adb:
        adb.connect(ep.serial)
        proc = _interactive_shell(adb, ep.serial)
        out = _read_until(proc, b"# ", seconds=60)  # typed earlier, the echo and the prompt could interleave
        _type(proc, b"tty\n")
        out += _read_until(proc, b"\n# ", seconds=60)
        _type(proc, b"exit\n")
        out += proc.communicate(timeout=60)[0]
        assert re.search(rb"# tty\r\n/dev/pts/\d+\r\n# ", out), out  # prompt, echo, a pty (CR LF), prompt


def test_shells_start_with_default_signals_whatever_the_endpoint_inherited(tmp_path, adb_home) -> None:
    """Started from a process that ignores SIGINT and SIGQUIT (as a script's background job does) or SIGHUP
    (nohup), the endpoint still gives its shells the default dispositions, so Ctrl-C on a pty interrupts them."""
    with contextlib.ExitStack() as stack:
        ignored = {signum: signal.signal(signum, signal.SIG_IGN)
                   for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)}
        try:
            ep = stack.enter_context(endpoint(tmp_path, auth="none"))  # inherits the ignored dispositions
        finally:
            for signum, handler in ignored.items():
                signal.signal(signum, handler)
        raw = RawAdb(ep.serial)
        raw.handshake()
        out, code = shell_v2_collect(raw, {1: "grep SigIgn /proc/self/status"})[1]
        assert code == 0 and out.split() == [b"SigIgn:", b"0000000000000000"], out
        raw.close()


def test_window_size_packets_resize_the_pty(tmp_path, adb_home) -> None:
    with endpoint(tmp_path, auth="none") as ep:
        raw = RawAdb(ep.serial)
        raw.handshake()
        out, code = shell_v2_session(raw, "shell,v2,TERM=vt100,pty:read line; stty size; echo $TERM",
                                     [(5, b"33x101,0x0\0"), (0, b"\n")])
        assert code == 0 and out.split(b"\r\n")[1:3] == [b"33 101", b"vt100"], out
        raw.close()


# --- port forwarding --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _upper_echo_server() -> Iterator[int]:
    """A TCP server on the device side (this host's network) that sends back what it reads, upper-cased, until
    the client closes; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                with conn:
                    while data := conn.recv(65536):
                        conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@needs_stock_adb
def test_stock_adb_forward_relays_a_tcp_connection_both_ways(plain_endpoint, tmp_path) -> None:
    payload = bytes(range(97, 123)) * 40_000  # ~1 MB: many WRTE packets, each waiting for its OKAY
    with stock_adb_client(tmp_path) as adb, _upper_echo_server() as device_port, refusing_port() as refused_port:
        adb.connect(plain_endpoint.serial)
        forwarded = adb("-s", plain_endpoint.serial, "forward", "tcp:0", f"tcp:{device_port}")  # adb picks the port
        assert forwarded.returncode == 0 and forwarded.stdout.strip().isdigit(), forwarded
        local = int(forwarded.stdout)
        with socket.create_connection(("127.0.0.1", local), timeout=60) as conn:
            sender = threading.Thread(target=conn.sendall, args=(payload,))
            sender.start()
            received = bytearray()
            while len(received) < len(payload) and (data := conn.recv(65536)):
                received += data
            sender.join()
        assert bytes(received) == payload.upper()
        # Nobody listens on refused_port: the device refuses the stream and adb closes the socket.
        adb("-s", plain_endpoint.serial, "forward", f"tcp:{local}", f"tcp:{refused_port}")
        with socket.create_connection(("127.0.0.1", local), timeout=60) as conn:
            assert conn.recv(1) == b""
        listed = adb("-s", plain_endpoint.serial, "forward", "--list").stdout
        assert f"tcp:{local} tcp:{refused_port}" in listed


@needs_stock_adb
def test_stock_adb_root_is_told_the_device_already_runs_as_root(plain_endpoint, tmp_path) -> None:
    with stock_adb_client(tmp_path) as adb:
        adb.connect(plain_endpoint.serial)
        root = adb("-s", plain_endpoint.serial, "root")
        assert (root.returncode, root.stdout.strip()) == (0, "adbd is already running as root"), root
        assert adb("-s", plain_endpoint.serial, "shell", "echo", "still", "here").stdout.strip() == "still here"
