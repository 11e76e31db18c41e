"""The host as a device, fact parsing, and the protocol helpers (no endpoint, no emulation)."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from pathlib import Path

import pytest

from clcdeploy.device import CommandResult, open_device
from clcdeploy.device.errors import CommandTimeoutError, TransferError
from clcdeploy.device.facts import decode_core, parse_cpuinfo, parse_thermal
from clcdeploy.device.virtual.sync_service import SyncPathError, resolve_device_path
from clcdeploy.device.virtual.protocol import (CNXN, AndroidPublicKey, ProtocolError, checksum, pack, parse_header,
                                               verify_checksum)
from clcdeploy.errors import DeviceError

CPUINFO_BIG_LITTLE = """processor\t: 0
CPU implementer\t: 0x41
CPU part\t: 0xc07
processor\t: 1
CPU implementer\t: 0x41
CPU part\t: 0xc07
Hardware\t: Qualcomm Technologies, Inc MSM8909
"""


def test_cpuinfo_parts_decode_to_core_names() -> None:
    hardware, implementer, parts = parse_cpuinfo(CPUINFO_BIG_LITTLE)
    assert (hardware, implementer, parts) == ("Qualcomm Technologies, Inc MSM8909", "0x41", ["0xc07", "0xc07"])
    assert decode_core("0x41", "0xc07") == "Cortex-A7"
    assert decode_core("0x41", "0xD03") == "Cortex-A53"
    assert decode_core("0x99", "0x123").startswith("unknown")


def test_thermal_readings_in_celsius() -> None:
    zones = parse_thermal("cpu-0 45123\ncpu-0 47000\nbattery 31\nbogus line\n")
    assert zones == {"cpu-0": 45.123, "cpu-0#2": 47.0, "battery": 31.0}


def test_local_device_shell_push_pull(tmp_path: Path) -> None:
    dev = open_device("local", work_dir=tmp_path / "work")
    result = dev.shell("echo out; echo err >&2; exit 6")
    assert result == CommandResult("out\n", "err\n", 6)
    with pytest.raises(DeviceError, match="exit status 6"):
        result.check("a failing command")
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    progress = []
    dev.push(src, f"{dev.work_dir}/x/a.bin", progress=lambda p, n, t: progress.append(n))
    assert sum(progress) == src.stat().st_size
    assert dev.remote_digest(f"{dev.work_dir}/x/a.bin") == ("sha256", hashlib.sha256(src.read_bytes()).hexdigest())
    assert dev.remote_digest(f"{dev.work_dir}/missing") is None
    dev.pull(f"{dev.work_dir}/x/a.bin", tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == src.read_bytes()
    with pytest.raises(TransferError):
        dev.pull(f"{dev.work_dir}/missing", tmp_path / "c.bin")
    with pytest.raises(CommandTimeoutError):
        dev.shell("sleep 10", timeout_s=0.5)
    facts = dev.facts()
    assert facts.serial == "local" and facts.cores >= 1 and facts.is_emulated is False


def test_packets_round_trip_and_reject_damage() -> None:
    data = pack(CNXN, 0x01000000, 4096, b"host::x\0")
    assert parse_header(data[:24], 4096)[:4] == (CNXN, 0x01000000, 4096, 8)
    verify_checksum(data[24:], checksum(data[24:]), 0x01000000)
    verify_checksum(data[24:], 0, 0x01000001)  # zero sum allowed from 0x01000001
    with pytest.raises(ProtocolError, match="checksum"):
        verify_checksum(data[24:], 0, 0x01000000)
    with pytest.raises(ProtocolError, match="magic"):
        parse_header(data[:20] + b"\0\0\0\0", 4096)
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_header(data[:24], 4)


def test_android_public_key_verifies_adb_shell_signatures(tmp_path: Path) -> None:
    from adb_shell.auth.keygen import keygen
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    keygen(str(tmp_path / "adbkey"))
    signer = PythonRSASigner.FromRSAKeyPath(str(tmp_path / "adbkey"))
    key = AndroidPublicKey.parse((tmp_path / "adbkey.pub").read_text())
    token = os.urandom(20)
    signature = signer.Sign(token)
    assert key.verify(token, signature)
    assert not key.verify(os.urandom(20), signature)
    assert not key.verify(token, bytes(len(signature)))
    raw = base64.b64decode((tmp_path / "adbkey.pub").read_text().split()[0])
    assert struct.unpack_from("<I", raw)[0] == 64


def test_sync_paths_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    (root / "abs").symlink_to("/usr")  # absolute links are taken relative to the device root
    assert resolve_device_path(root, "/bin/sh") == root / "usr/bin/sh"
    assert resolve_device_path(root, "/abs/bin/x") == root / "usr/bin/x"
    assert resolve_device_path(root, "/usr/../bin/sh") == root / "usr/bin/sh"
    for bad in ("/../etc/passwd", "/data/../../etc", "relative/path"):
        with pytest.raises(SyncPathError):
            resolve_device_path(root, bad)


def test_a_final_symlink_is_followed_inside_the_root_when_asked(tmp_path: Path) -> None:
    """open() and opendir() on the device follow the last component; the host must not follow it out of the
    root (a link to /root would otherwise list the host's /root)."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/release").write_text("device")
    (root / "link").symlink_to("/etc/release")
    (root / "dirlink").symlink_to("/etc")
    assert resolve_device_path(root, "/link") == root / "link"  # lstat semantics by default
    assert resolve_device_path(root, "/link", follow_last=True) == root / "etc/release"
    assert resolve_device_path(root, "/dirlink", follow_last=True) == root / "etc"
    assert resolve_device_path(root, "/dirlink/") == root / "etc"  # a trailing slash follows, as the kernel


def test_device_layer_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, clcdeploy.device, clcdeploy.device.adb, clcdeploy.device.commands, "
            "clcdeploy.device.native, clcdeploy.device.virtual.adbd, clcdeploy.device.virtual.daemon, "
            "clcdeploy.device.virtual.rootfs; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
