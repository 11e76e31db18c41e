"""The device endpoint's shell services: `shell:` / `exec:` (raw output, stderr merged, no exit status) and
`shell,v2[,args]:` (stdout, stderr and exit status framed, stdin and window size from the host). The command
runs in the device's userland (or the host shell in plain mode), on a pty when adbd would give it one.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import termios
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from clcdeploy.device.virtual import emulation
from clcdeploy.device.virtual.protocol import StreamClosed

if TYPE_CHECKING:
    from clcdeploy.device.virtual.adbd import Stream

# The host's setsid, which starts the device's shell in a session of its own: not looked up on the PATH the device's
# shell gets, which need not have it.
SETSID = shutil.which("setsid", path="/usr/bin:/bin:/usr/sbin:/sbin") or "setsid"

# shell protocol v2 packet ids
SH_STDIN, SH_STDOUT, SH_STDERR, SH_EXIT, SH_CLOSE_STDIN, SH_WINSIZE = range(6)


def shell_args(service: str) -> tuple[str, bool, str]:
    """(command, pty?, TERM) of `exec:cmd` or `shell[,args]:cmd`, as adbd decides: a pty when the command is
    empty (interactive) unless `raw` is given, or when `pty` is given; TERM from `TERM=...`, else "dumb"."""
    head, _, command = service.partition(":")
    if head == "exec":
        return command, False, "dumb"
    use_pty, term = not command, "dumb"
    for arg in head.split(",")[1:]:
        if arg in ("raw", "pty"):
            use_pty = arg == "pty"
        elif arg.startswith("TERM="):
            term = arg[len("TERM="):]
    return command, use_pty, term


def _spawn(stream: Stream, command: str, *, merge_stderr: bool, use_pty: bool = False,
           term: str = "dumb") -> tuple[subprocess.Popen, int | None]:
    """Start `command` (an interactive shell when empty); return it and its pty's master fd (None: pipes)."""
    cfg = stream.conn.config
    if cfg.plain:
        argv = ["/bin/sh", "-c", command] if command else ["/bin/sh"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cfg.root), "LANG": "C.UTF-8"}
        cwd = str(cfg.root)
    else:
        argv = emulation.shell_argv(cfg.root, command)
        env = emulation.device_env()
        cwd = "/"
    env["TERM"] = term
    if not use_pty:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                                env=env, cwd=cwd, start_new_session=True)
        stream.process = proc
        return proc, None
    master, slave = pty.openpty()
    try:
        # A new session whose controlling terminal is the pty, so Ctrl-C (sent as \x03) interrupts the job.
        proc = subprocess.Popen([SETSID, "--ctty", *argv], stdin=slave, stdout=slave, stderr=slave,
                                env=env, cwd=cwd)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)  # the master reads EIO once the shell and its children have closed theirs
    stream.process = proc
    return proc, master


def _set_winsize(fd: int, data: bytes) -> None:
    """Apply a shell v2 window-size packet ("rows x cols, xpixels x ypixels" as text, e.g. "24x80,0x0")."""
    match = re.match(rb"(\d+)x(\d+),(\d+)x(\d+)", data)
    if match:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("4H", *(min(int(v), 0xFFFF) for v in match.groups())))


def _pump_stdin(stream: Stream, proc: subprocess.Popen, v2: bool, master: int | None = None) -> None:
    """Host -> the process's stdin or pty (raw bytes, or shell v2 STDIN/CLOSE_STDIN/WINSIZE packets)."""
    tty = os.dup(master) if master is not None else None  # ours to close: the output side closes `master`
    try:
        while True:
            if v2:
                kind, length = struct.unpack("<BI", stream.read_exact(5))
                data = stream.read_exact(length) if length else b""
                if kind == SH_WINSIZE and tty is not None:
                    _set_winsize(tty, data)
                    continue
                if kind == SH_CLOSE_STDIN and tty is None:  # a pty cannot close only its input: adbd ignores it
                    break
                if kind != SH_STDIN:
                    continue
            else:
                data = stream.read_some()
                if not data:
                    break
            if tty is None:
                proc.stdin.write(data)
                proc.stdin.flush()
            else:
                view = memoryview(data)
                while view:
                    view = view[os.write(tty, view):]
    except (StreamClosed, OSError, ValueError):
        pass
    finally:
        try:
            if tty is None:
                proc.stdin.close()
            else:
                os.close(tty)
        except OSError:
            pass


def _relay(read: Callable[[], bytes], emit: Callable[[bytes], None]) -> None:
    """Hand each chunk `read` returns to `emit` until it returns nothing (end of output)."""
    while data := read():
        emit(data)


def _read_pty(master: int) -> bytes:
    """The next output of a pty; nothing once every slave side is closed (then Linux reads EIO)."""
    try:
        return os.read(master, 65536)
    except OSError:
        return b""


def _pump_pty(master: int, emit: Callable[[bytes], None]) -> None:
    """pty -> `emit` until the end of its output, closing the master."""
    try:
        _relay(partial(_read_pty, master), emit)
    finally:
        os.close(master)


def shell_legacy(stream: Stream, service: str) -> None:
    """`shell:cmd` and `exec:cmd`: raw output (stderr merged), no exit status, as adbd's raw mode; `shell:`
    alone is an interactive shell on a pty. A device without shell v2 (adbd before Android 7) runs every
    `shell:` command on a pty, as those adbds did: CR LF line ends, stderr in the same stream."""
    command, use_pty, term = shell_args(service)
    if not stream.conn.config.shell_v2 and service.startswith("shell"):
        use_pty = True
    proc, master = _spawn(stream, command, merge_stderr=True, use_pty=use_pty, term=term)
    threading.Thread(target=_pump_stdin, args=(stream, proc, False, master), daemon=True).start()
    try:
        if master is not None:
            _pump_pty(master, stream.write)
        else:
            _relay(partial(proc.stdout.read1, 65536), stream.write)
    finally:
        proc.wait()


def shell_v2(stream: Stream, service: str) -> None:
    """`shell,v2[,args]:cmd`: stdout/stderr/exit framed as [id][u32 len][data] (on a pty: one output)."""
    command, use_pty, term = shell_args(service)
    proc, master = _spawn(stream, command, merge_stderr=False, use_pty=use_pty, term=term)
    threading.Thread(target=_pump_stdin, args=(stream, proc, True, master), daemon=True).start()
    lock = threading.Lock()

    def frame(kind: int, data: bytes) -> None:
        with lock:
            stream.write(struct.pack("<BI", kind, len(data)) + data)

    def pump(pipe, kind: int) -> None:
        try:
            _relay(partial(pipe.read1, 65536), partial(frame, kind))
        except StreamClosed:
            pass

    if master is not None:
        try:
            _pump_pty(master, partial(frame, SH_STDOUT))
        except StreamClosed:
            pass
    else:
        err_thread = threading.Thread(target=pump, args=(proc.stderr, SH_STDERR), daemon=True)
        err_thread.start()
        pump(proc.stdout, SH_STDOUT)
        err_thread.join()
    code = proc.wait()
    frame(SH_EXIT, bytes([code & 0xFF if code >= 0 else (128 - code) & 0xFF]))
