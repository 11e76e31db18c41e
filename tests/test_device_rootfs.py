"""The virtual device's cached rootfs: a stamped rootfs missing a file every use needs (the dynamic loader,
python3, the runtimes) is not taken as built. Fake rootfs folders in a scratch cache; nothing is built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clcdeploy.device.errors import VirtualDeviceError
from clcdeploy.device.virtual import daemon, rootfs


@pytest.fixture
def fake_rootfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stamped rootfs in a scratch XDG_CACHE_HOME holding the required files, laid out as debootstrap does
    (lib -> usr/lib, the loader a link into the multiarch folder, python3 -> python3.11)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = rootfs.rootfs_dir()
    (root / "usr/lib/aarch64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1").write_bytes(b"\x7fELF")
    (root / "lib").symlink_to("usr/lib")
    (root / "usr/lib/ld-linux-aarch64.so.1").symlink_to("aarch64-linux-gnu/ld-linux-aarch64.so.1")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/python3.11").write_bytes(b"\x7fELF")
    (root / "usr/bin/python3").symlink_to("python3.11")
    for package in ("numpy", "onnxruntime", "ai_edge_litert"):
        (root / rootfs.SITE_PACKAGES / package).mkdir(parents=True)
        (root / rootfs.SITE_PACKAGES / package / "__init__.py").write_text("")
    (root / "etc").mkdir()
    (root / "etc/clcdeploy-rootfs").write_text(rootfs.RECIPE_VERSION + "\n")
    return root


def test_a_complete_stamped_rootfs_is_built(fake_rootfs: Path) -> None:
    assert rootfs.missing_files() == [] and rootfs.is_built()
    assert rootfs.describe() == "built"


@pytest.mark.parametrize("gone", ["usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "usr/bin/python3.11",
                                  f"{rootfs.SITE_PACKAGES}/onnxruntime/__init__.py"])
def test_a_stamped_rootfs_missing_a_required_file_is_incomplete(fake_rootfs: Path, gone: str) -> None:
    (fake_rootfs / gone).unlink()
    missing = rootfs.missing_files()
    assert len(missing) == 1 and not rootfs.is_built()
    assert rootfs.describe() == f"incomplete, missing /{missing[0]}: `clcdeploy device start` rebuilds it"


def test_absolute_links_resolve_inside_the_rootfs_not_on_the_host(fake_rootfs: Path) -> None:
    loader = fake_rootfs / "usr/lib/ld-linux-aarch64.so.1"
    loader.unlink()
    loader.symlink_to("/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1")  # through the rootfs's own lib link
    assert rootfs.missing_files() == []
    python = fake_rootfs / "usr/bin/python3"
    python.unlink()
    python.symlink_to("/bin/sh")  # there on the host, not in the rootfs
    assert Path("/bin/sh").exists() and python.exists()
    assert rootfs.missing_files() == ["usr/bin/python3"]
    python.unlink()
    python.symlink_to("python3")  # a loop
    assert rootfs.missing_files() == ["usr/bin/python3"]


def test_unbuilt_and_outdated_rootfs_states(fake_rootfs: Path) -> None:
    (fake_rootfs / "etc/clcdeploy-rootfs").write_text("0\n")
    assert not rootfs.is_built()
    assert rootfs.describe() == "built by an older clcdeploy: `clcdeploy device start` rebuilds it"
    assert rootfs.describe(fake_rootfs.parent / "elsewhere") == "not built yet"


class _BuildStarted(Exception):
    pass


def test_using_an_incomplete_rootfs_says_so_and_rebuilds_it(fake_rootfs: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """As an outdated one: the build starts (stopped here at its first step) instead of the rootfs being used."""
    (fake_rootfs / "usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1").unlink()
    steps: list[str] = []

    def first_step() -> None:
        steps.append("build")
        raise _BuildStarted

    monkeypatch.setattr(rootfs.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(rootfs.emulation, "ensure_binfmt", first_step)
    monkeypatch.setattr(rootfs, "_install_executorch", lambda *a: pytest.fail("an incomplete rootfs was used"))
    lines: list[str] = []
    with pytest.raises(_BuildStarted):
        rootfs.build_rootfs(log=lines.append)
    assert steps == ["build"]
    assert lines == [f"the rootfs in {fake_rootfs} is incomplete (missing /lib/ld-linux-aarch64.so.1): "
                     f"rebuilding it"]


def test_an_incomplete_rootfs_a_running_device_serves_is_not_rebuilt_under_it(
        fake_rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fake_rootfs / "usr/bin/python3.11").unlink()
    running = daemon.Endpoint(serial="127.0.0.1:5555", port=5555, pid=os.getpid(), root=str(fake_rootfs),
                              log="", running=True)
    monkeypatch.setattr(daemon, "status", lambda state_dir=None: [running])
    monkeypatch.setattr(rootfs.emulation, "ensure_binfmt", lambda: pytest.fail("a rebuild started"))
    with pytest.raises(VirtualDeviceError) as caught:
        rootfs.build_rootfs(log=lambda _: None)
    assert str(caught.value) == (f"the rootfs in {fake_rootfs} is incomplete (missing /usr/bin/python3) and the "
                                 f"virtual device 127.0.0.1:5555 is using it: stop it with `clcdeploy device stop`, "
                                 f"then retry, which rebuilds it")
    assert (fake_rootfs / "etc/clcdeploy-rootfs").exists()


def test_a_complete_rootfs_gets_missing_executorch_libraries_back(fake_rootfs: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The libraries pte_runner links are copied in on every use when missing or different, not only at build."""
    wheel = tmp_path / "wheel/executorch"
    (wheel / "lib").mkdir(parents=True)
    for name in rootfs.EXECUTORCH_LIBS:
        (wheel / "lib" / name).write_bytes(name.encode())
    monkeypatch.setattr(rootfs, "aarch64_executorch_dir", lambda log=print: wheel)
    monkeypatch.setattr(rootfs, "_install_runner", lambda root, log: None)
    libdir = fake_rootfs / rootfs.EXECUTORCH_PREFIX / "lib"
    libdir.mkdir(parents=True)
    (libdir / "libexecutorch.so").write_bytes(b"old")
    assert rootfs.build_rootfs(log=lambda _: None) == fake_rootfs
    assert all((libdir / name).read_bytes() == name.encode() for name in rootfs.EXECUTORCH_LIBS)
    assert sorted(p.name for p in libdir.iterdir()) == sorted(rootfs.EXECUTORCH_LIBS)


def test_device_status_reports_an_incomplete_rootfs(fake_rootfs: Path) -> None:
    """It had said `(built)` for a stamped rootfs without the loader, which every use then failed on."""
    (fake_rootfs / "usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1").unlink()
    env = dict(os.environ)  # the fixture's scratch XDG_CACHE_HOME
    status = [sys.executable, "-m", "clcdeploy", "device", "status"]
    text = subprocess.run(status, capture_output=True, text=True, timeout=60, env=env)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == (f"rootfs: {fake_rootfs} (incomplete, missing /lib/ld-linux-aarch64.so.1: "
                                           f"`clcdeploy device start` rebuilds it)")
    info = json.loads(subprocess.run([*status, "--json"], capture_output=True, text=True, timeout=60,
                                     env=env).stdout)
    assert info["rootfs_built"] is False and info["rootfs_state"].startswith("incomplete, missing /lib/ld-linux")


def test_starting_a_running_device_whose_rootfs_lost_a_file_says_so(fake_rootfs: Path) -> None:
    """`device start` reuses a running device; its rootfs is checked as a new start would check it. The device
    here is a plain endpoint serving the fake rootfs, registered in the scratch cache's run folder."""
    ep = daemon.start(port=0, plain_root=fake_rootfs, log=lambda _: None)
    try:
        assert daemon.start(port=ep.port, log=lambda _: None).pid == ep.pid  # complete: reused
        (fake_rootfs / "usr/bin/python3.11").unlink()
        with pytest.raises(VirtualDeviceError) as caught:
            daemon.start(port=ep.port, log=lambda _: None)
        assert str(caught.value) == (
            f"the virtual device {ep.serial} (pid {ep.pid}) runs, but its rootfs {fake_rootfs} lost "
            f"/usr/bin/python3: stop it (clcdeploy device stop --port {ep.port}) and start it again, which rebuilds "
            f"the rootfs")
        assert daemon.start(port=ep.port, plain_root=fake_rootfs, log=lambda _: None).pid == ep.pid  # not a rootfs
    finally:
        daemon.stop(port=ep.port)
