"""ADB devices through adb-shell: TCP (`host:port`) and USB serials, exit statuses, checked transfers."""

from __future__ import annotations

import os
import re
import secrets
import struct
import sys
from pathlib import Path

from clcdeploy.device.base import CommandResult, Device, Progress, check_local_file, quote
from clcdeploy.files import atomic_path
from clcdeploy.device.errors import (AuthenticationError, CommandTimeoutError, ConnectionLostError, DeviceBusyError,
                                     StorageFullError, TransferError, UnknownDeviceError)
from clcdeploy.errors import DeviceError

WORK_DIR = "/data/local/tmp/clcdeploy"
# A phone shows "Allow USB debugging?" on first contact: give the user time to tap it.
DEFAULT_AUTH_TIMEOUT_S = 60.0
DEFAULT_TRANSPORT_TIMEOUT_S = 10.0
# Shell commands have no deadline unless the caller gives one (benchmarks can be long and silent).
UNLIMITED_S = 24 * 3600.0
SHELL_V2_PROBE_TIMEOUT_S = 5.0


class _EofTcpTransport:
    """adb-shell's TcpTransport, but a closed socket raises instead of spinning until the read timeout."""

    def __new__(cls, host: str, port: int):
        from adb_shell.transport.tcp_transport import TcpTransport

        class Transport(TcpTransport):
            def bulk_read(self, numbytes, transport_timeout_s):
                data = super().bulk_read(numbytes, transport_timeout_s)
                if not data and numbytes:
                    raise ConnectionResetError("the device closed the connection")
                return data

        return Transport(host, port)


def parse_shell_v2(data: bytes) -> tuple[bytes, bytes, int | None]:
    """Split shell-protocol v2 frames into (stdout, stderr, exit status)."""
    out, err, code = bytearray(), bytearray(), None
    pos = 0
    while pos + 5 <= len(data):
        kind, length = struct.unpack_from("<BI", data, pos)
        chunk = data[pos + 5: pos + 5 + length]
        pos += 5 + length
        if kind == 1:
            out += chunk
        elif kind == 2:
            err += chunk
        elif kind == 3 and chunk:
            code = chunk[0]
    return bytes(out), bytes(err), code


class AdbDevice(Device):
    """One ADB device. `serial` is `host:port` for TCP, anything else is a USB serial."""

    def __init__(self, serial: str, *, key_path: str | os.PathLike | None = None,
                 auth_timeout_s: float = DEFAULT_AUTH_TIMEOUT_S,
                 transport_timeout_s: float = DEFAULT_TRANSPORT_TIMEOUT_S,
                 work_dir: str = WORK_DIR) -> None:
        self.serial = serial
        self.work_dir = work_dir
        self.transport_timeout_s = transport_timeout_s
        self._shell_v2: bool | None = None
        self._key_path, self._auth_timeout_s = key_path, auth_timeout_s
        self._adb = self._connect(key_path, auth_timeout_s)

    @property
    def adb(self):
        """The adb-shell device, reconnected if an earlier timeout or drop closed it."""
        if self._adb is None:
            self._adb = self._connect(self._key_path, self._auth_timeout_s)
        return self._adb

    # --- connection -------------------------------------------------------------------------------------
    def _connect(self, key_path, auth_timeout_s: float):
        from adb_shell import exceptions as ex
        from adb_shell.adb_device import AdbDevice as _Adb

        from clcdeploy.device.keys import load_signer

        signer = load_signer(key_path)
        if ":" in self.serial:
            host, _, port = self.serial.rpartition(":")
            if not port.isdigit():
                raise UnknownDeviceError(f"bad TCP serial {self.serial!r}: expected host:port")
            adb = _Adb(_EofTcpTransport(host, int(port)), default_transport_timeout_s=self.transport_timeout_s)
        else:
            adb = _usb_device(self.serial, self.transport_timeout_s)

        prompted = []

        def prompt(_device) -> None:
            prompted.append(True)
            print(f"{self.serial}: accept the 'Allow USB debugging?' prompt on the device "
                  f"(waiting up to {auth_timeout_s:g} s)", file=sys.stderr)

        try:
            try:
                adb.connect(rsa_keys=[signer], auth_timeout_s=auth_timeout_s, auth_callback=prompt,
                            transport_timeout_s=self.transport_timeout_s)
            except BaseException:
                adb.close()  # do not leave a half-open socket (the device would keep waiting on it)
                raise
        except ConnectionRefusedError as exc:
            raise UnknownDeviceError(f"no ADB device at {self.serial} (connection refused); available: "
                                     f"{', '.join(available_serials())}; start the virtual one with "
                                     f"`clcdeploy device start`") from exc
        except (ex.TcpTimeoutException, ex.AdbTimeoutError) as exc:
            if not prompted:  # silent before any key was offered: not waiting for a user
                raise UnknownDeviceError(f"{self.serial} did not answer the ADB handshake within "
                                         f"{self.transport_timeout_s:g} s: check that it is an ADB device "
                                         f"(host:port)") from exc
            raise AuthenticationError(f"{self.serial} did not accept our key within {auth_timeout_s:g} s: "
                                      f"accept the 'Allow USB debugging?' prompt on the device and retry") from exc
        except (ex.InvalidCommandError, ex.InvalidResponseError, ex.InvalidChecksumError) as exc:
            raise UnknownDeviceError(f"{self.serial} does not speak ADB (its answer is not an ADB packet): "
                                     f"check the address and port") from exc
        except ex.DeviceAuthError as exc:
            raise AuthenticationError(f"{self.serial} refused authentication: {exc}") from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise AuthenticationError(f"{self.serial} closed the connection during authentication "
                                      f"(key refused?)") from exc
        except OSError as exc:
            if "BUSY" in str(exc).upper():
                raise DeviceBusyError(_busy_message(self.serial)) from exc
            raise UnknownDeviceError(f"cannot connect to {self.serial}: {exc}") from exc
        except Exception as exc:
            if "BUSY" in type(exc).__name__.upper() or "BUSY" in str(exc).upper():
                raise DeviceBusyError(_busy_message(self.serial)) from exc
            raise
        return adb

    def close(self) -> None:
        if self._adb is not None:
            try:
                self._adb.close()
            finally:
                self._adb = None

    # --- shell ------------------------------------------------------------------------------------------
    def _service(self, service: bytes, command: str, timeout_s: float | None) -> bytes:
        from adb_shell import exceptions as ex

        limit = timeout_s or UNLIMITED_S
        adb = self.adb
        try:
            return adb._service(service, command.encode(), transport_timeout_s=limit,
                                      read_timeout_s=limit, timeout_s=timeout_s, decode=False)
        except (ex.TcpTimeoutException, ex.AdbTimeoutError) as exc:
            self.close()  # the stream is in an unknown state
            raise CommandTimeoutError(f"command did not finish within {limit:g} s on {self.serial}: "
                                      f"{command[:80]}") from exc
        except (ConnectionResetError, BrokenPipeError, ex.AdbConnectionError) as exc:
            self.close()
            raise ConnectionLostError(f"lost the connection to {self.serial} while running: {command[:80]}") from exc

    def _supports_shell_v2(self) -> bool:
        """Decided once: by the Android version (shell v2 came with Android 7, SDK 24), read through the legacy
        shell every adbd has; where getprop says nothing (a Linux device), by opening a v2 shell, which a device
        without it refuses only after SHELL_V2_PROBE_TIMEOUT_S (adb-shell waits out the refusal)."""
        if self._shell_v2 is None:
            from adb_shell import exceptions as ex

            sdk = self._service(b"shell", "getprop ro.build.version.sdk 2>/dev/null", 30).decode("utf-8", "replace")
            if sdk.strip().isdigit():
                self._shell_v2 = int(sdk) >= 24
                return self._shell_v2
            try:
                self.adb._service(b"shell,v2,raw", b"true", transport_timeout_s=SHELL_V2_PROBE_TIMEOUT_S,
                                   read_timeout_s=SHELL_V2_PROBE_TIMEOUT_S, decode=False)
                self._shell_v2 = True
            except (ex.TcpTimeoutException, ex.AdbTimeoutError, ex.InvalidCommandError, ex.InvalidResponseError):
                self._shell_v2 = False
        return self._shell_v2

    def shell(self, command: str, *, timeout_s: float | None = None) -> CommandResult:
        if self._supports_shell_v2():
            out, err, code = parse_shell_v2(self._service(b"shell,v2,raw", command, timeout_s))
            if code is None:
                raise ConnectionLostError(f"{self.serial} closed the shell without an exit status: {command[:80]}")
            return CommandResult(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code)
        # Legacy shell: no exit status on the wire, so the command prints it after a unique marker.
        marker = f"__clc_exit_{secrets.token_hex(6)}__"
        raw = self._service(b"shell", f"({command}); echo \"{marker}$?\"", timeout_s).decode("utf-8", "replace")
        match = re.search(re.escape(marker) + r"(\d+)\s*$", raw)
        if match is None:
            raise ConnectionLostError(f"{self.serial}: the shell ended without reporting an exit status: "
                                      f"{command[:80]}")
        return CommandResult(raw[: match.start()].replace("\r\n", "\n"), "", int(match.group(1)))

    # --- files ------------------------------------------------------------------------------------------
    def push(self, local_path, remote_path: str, *, progress: Progress | None = None) -> None:
        from adb_shell import exceptions as ex

        src = check_local_file(local_path)
        total = src.stat().st_size
        sent = [0]

        def on_chunk(path: str, nbytes: int, size: int) -> None:
            sent[0] += nbytes
            if progress:
                progress(path, nbytes, size)

        parent = os.path.dirname(remote_path.rstrip("/")) or "/"
        self.shell(f"mkdir -p {quote(parent)}", timeout_s=60).check(f"creating {parent} on {self.serial}")
        try:
            self.adb.push(str(src), remote_path, st_mode=0o100755 if os.access(src, os.X_OK) else 0o100644,
                           progress_callback=on_chunk, transport_timeout_s=max(self.transport_timeout_s, 60),
                           read_timeout_s=max(self.transport_timeout_s, 60))
        except (ex.PushFailedError, ex.AdbCommandFailureException) as exc:
            message = str(exc)
            if "space" in message.lower():
                raise StorageFullError(f"{self.serial} is out of storage: pushing {src.name} to {remote_path} "
                                       f"failed ({message}); free space under {parent}") from exc
            raise TransferError(f"pushing {src} to {self.serial}:{remote_path} failed: {message}") from exc
        except (ConnectionResetError, BrokenPipeError, ex.TcpTimeoutException, ex.AdbTimeoutError,
                ex.AdbConnectionError, ex.InvalidResponseError, OSError) as exc:
            self.close()
            raise ConnectionLostError(f"connection to {self.serial} lost while pushing {src.name} to {remote_path}: "
                                      f"{sent[0]} of {total} bytes sent") from exc
        remote = self.remote_digest(remote_path)
        if remote is None or not remote.matches(src):
            raise TransferError(f"{self.serial}:{remote_path}: "
                                + (f"{remote.algorithm} {remote.hexdigest} differs from the local file {src}'s"
                                   if remote else "missing after the push"))

    def pull(self, remote_path: str, local_path, *, progress: Progress | None = None) -> None:
        from adb_shell import exceptions as ex

        expected = self.remote_digest(remote_path)
        if expected is None:
            raise TransferError(f"{self.serial}:{remote_path}: no such file")
        dst = Path(local_path)
        received = [0]

        def on_chunk(path: str, nbytes: int, size: int) -> None:
            received[0] += nbytes
            if progress:
                progress(path, nbytes, size)

        try:
            with atomic_path(dst) as tmp:
                self.adb.pull(remote_path, str(tmp), progress_callback=on_chunk,
                               transport_timeout_s=max(self.transport_timeout_s, 60),
                               read_timeout_s=max(self.transport_timeout_s, 60))
                if not expected.matches(tmp):
                    raise TransferError(
                        f"{self.serial}:{remote_path}: the pulled copy's {expected.algorithm} differs from the "
                        f"device's")
        except ex.AdbCommandFailureException as exc:
            raise TransferError(f"pulling {self.serial}:{remote_path} failed: {exc}") from exc
        except (ConnectionResetError, BrokenPipeError, ex.TcpTimeoutException, ex.AdbTimeoutError,
                ex.AdbConnectionError, ex.InvalidResponseError) as exc:
            self.close()
            raise ConnectionLostError(f"connection to {self.serial} lost while pulling {remote_path}: "
                                      f"{received[0]} bytes arrived") from exc
        except OSError as exc:
            if exc.errno == 28:
                raise StorageFullError(f"no space left on the host writing {dst}") from exc
            raise

    # --- sync helpers for tests and `devices` -----------------------------------------------------------
    def stat(self, remote_path: str) -> tuple[int, int, int]:
        """(mode, size, mtime) via sync STAT; mode 0 when absent."""
        return self.adb.stat(remote_path)

    def listdir(self, remote_path: str) -> list[str]:
        return [bytes(f.filename).decode("utf-8", "replace") if isinstance(f.filename, (bytes, bytearray))
                else f.filename for f in self.adb.list(remote_path)]


def available_serials() -> list[str]:
    """For error messages: the host, USB ADB devices and running virtual-device endpoints."""
    from clcdeploy.device.virtual.daemon import status

    return ["local", *usb_serials(), *(ep.serial for ep in status() if ep.running)]


def _busy_message(serial: str) -> str:
    return (f"USB device {serial} is held by another program, usually a running adb server: "
            f"run `adb kill-server` and retry")


def _usb_device(serial: str, transport_timeout_s: float):
    try:
        from adb_shell.adb_device import AdbDeviceUsb
    except ImportError as exc:
        raise DeviceError("USB devices need the usb extra: pip install 'clcdeploy[usb]'") from exc
    try:
        return AdbDeviceUsb(serial=serial, default_transport_timeout_s=transport_timeout_s)
    except Exception as exc:
        if "BUSY" in str(exc).upper():
            raise DeviceBusyError(_busy_message(serial)) from exc
        raise UnknownDeviceError(f"no USB device with serial {serial!r}; available: "
                                 f"{', '.join(available_serials())}") from exc


def usb_serials() -> list[str]:
    """Serials of USB devices that expose an ADB interface (empty without the usb extra)."""
    try:
        import usb1
    except ImportError:
        return []
    serials = []
    try:
        with usb1.USBContext() as ctx:
            for dev in ctx.getDeviceIterator(skip_on_error=True):
                for setting in dev.iterSettings():
                    if (setting.getClass(), setting.getSubClass(), setting.getProtocol()) == (0xFF, 0x42, 0x01):
                        try:
                            serials.append(dev.getSerialNumber())
                        except Exception:  # permissions: still list it
                            serials.append(f"usb:{dev.getBusNumber()}-{dev.getDeviceAddress()}")
                        break
    except Exception:
        return serials
    return serials
