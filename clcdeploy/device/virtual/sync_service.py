"""The device endpoint's file service (`sync:`: STAT, LIST, SEND, RECV, QUIT), confined to the device's root:
device paths are resolved inside it, symlinks included, as a chroot would."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from clcdeploy.device.virtual.protocol import StreamClosed

if TYPE_CHECKING:
    from clcdeploy.device.virtual.adbd import Stream

log = logging.getLogger("clcdeploy.adbd")

SYNC_DATA_MAX = 64 * 1024


class SyncPathError(Exception):
    """A sync path the device refuses (outside its root, not absolute)."""


def resolve_device_path(root: Path, device_path: str, *, plain: bool = False, follow_last: bool = False) -> Path:
    """Map an absolute device path to a host path inside `root`, following symlinks as a chroot would.

    The last component is followed too with `follow_last` (open, opendir) or a trailing slash (as the kernel
    does); otherwise it is left as is (lstat). The result then holds no symlink that the host could follow
    out of `root`. In plain mode device paths are host paths, and only those under `root` are served.
    """
    if not device_path.startswith("/"):
        raise SyncPathError(f"path must be absolute: {device_path}")
    if plain:
        host = Path(os.path.realpath(device_path))
        if host != root and root not in host.parents:
            raise SyncPathError(f"path is outside the device root {root}: {device_path}")
        return host
    depth = 0
    for part in device_path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise SyncPathError(f"path escapes the device root: {device_path}")
        elif part not in ("", "."):
            depth += 1
    parts = [p for p in device_path.split("/") if p not in ("", ".")]
    follow_last = follow_last or device_path.endswith("/")
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if (parts or follow_last) and candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise SyncPathError(f"too many symlinks: {device_path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def sync_service(stream: Stream, service: str) -> None:
    root = stream.conn.config.root
    plain = stream.conn.config.plain

    def reply(ident: bytes, *values: int) -> None:
        stream.write(ident + struct.pack(f"<{len(values)}I", *values))

    def fail(message: str) -> None:
        data = message.encode()
        stream.write(b"FAIL" + struct.pack("<I", len(data)) + data)

    while True:
        ident, length = struct.unpack("<4sI", stream.read_exact(8))
        if ident == b"QUIT":
            return
        if length > 4096:
            fail(f"path too long ({length})")
            return
        path = stream.read_exact(length).decode("utf-8", "replace")
        if ident == b"SEND":
            remote, _, mode = path.rpartition(",")
            _sync_send(stream, root, remote or path, int(mode) if mode.isdigit() else 0o644, fail, reply, plain)
            continue
        try:  # STAT is lstat (adbd's STAT v1); LIST and RECV follow a final symlink, as opendir and open do
            host_path = resolve_device_path(root, path, plain=plain, follow_last=ident != b"STAT")
        except SyncPathError as exc:
            log.info("refusing sync %s: %s", ident.decode(errors="replace"), exc)
            if ident == b"STAT":  # STAT v1 has no FAIL reply (adbd answers zeros for what it cannot stat)
                reply(b"STAT", 0, 0, 0)
            elif ident == b"LIST":
                stream.write(b"DONE" + bytes(16))
            else:
                fail(str(exc))
            continue
        if ident == b"STAT":
            try:
                st = os.lstat(host_path)
                if path.endswith("/") and not stat.S_ISDIR(st.st_mode):  # "file/" fails with ENOTDIR
                    raise NotADirectoryError(path)
                reply(b"STAT", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))
            except OSError:
                reply(b"STAT", 0, 0, 0)
        elif ident == b"LIST":
            try:
                names = [".", ".."] + sorted(os.listdir(host_path))
            except OSError:
                names = []
            for name in names:
                try:
                    st = os.lstat(host_path / name)
                except OSError:
                    continue
                raw = name.encode()
                stream.write(b"DENT" + struct.pack("<4I", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(raw)) + raw)
            stream.write(b"DONE" + bytes(16))
        elif ident == b"RECV":
            try:
                fh = open(host_path, "rb")
            except OSError as exc:
                fail(f"open failed: {exc.strerror}")
                continue
            with fh:
                while True:
                    data = fh.read(SYNC_DATA_MAX)
                    if not data:
                        break
                    stream.write(b"DATA" + struct.pack("<I", len(data)) + data)
            reply(b"DONE", 0)
        else:
            fail(f"unknown sync request {ident!r}")
            return


def _sync_send(stream: Stream, root: Path, remote: str, mode: int, fail, reply, plain: bool) -> None:
    """Receive DATA records into a temp file next to the target; rename on DONE; FAIL on any error."""
    error = None
    tmp = None
    fh = None
    try:
        target = resolve_device_path(root, remote, plain=plain)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise OSError(21, "Is a directory")
        tmp = target.with_name(f".{target.name}.adbd-{secrets.token_hex(4)}")
        fh = open(tmp, "wb")
    except (SyncPathError, OSError) as exc:
        error = str(exc) if isinstance(exc, SyncPathError) else f"{remote}: {exc.strerror}"
    try:
        while True:
            ident, length = struct.unpack("<4sI", stream.read_exact(8))
            if ident == b"DATA":
                if length > SYNC_DATA_MAX:
                    error = error or f"DATA chunk of {length} bytes exceeds {SYNC_DATA_MAX}"
                    raise StreamClosed
                data = stream.read_exact(length)
                if fh is not None and error is None:
                    try:
                        fh.write(data)
                    except OSError as exc:
                        error = f"{remote}: {exc.strerror}"
            elif ident == b"DONE":
                mtime = length
                break
            else:
                error = error or f"unexpected {ident!r} during SEND"
                raise StreamClosed
        if fh is not None:
            try:
                fh.close()
                fh = None
                if error is None:
                    os.chmod(tmp, stat.S_IMODE(mode) or 0o644)
                    if mtime:
                        os.utime(tmp, (mtime, mtime))
                    os.replace(tmp, target)
                    tmp = None
            except OSError as exc:
                error = f"{remote}: {exc.strerror}"
        _discard(fh, tmp)  # before answering, so the host never sees the partial file
        fh = tmp = None
        if error:
            fail(error)
        else:
            reply(b"OKAY", 0)
    finally:
        _discard(fh, tmp)  # an interrupted or failed push leaves nothing behind


def _discard(fh, tmp: Path | None) -> None:
    try:
        if fh is not None:
            fh.close()
    except OSError:
        pass
    if tmp is not None and tmp.exists():
        tmp.unlink()
