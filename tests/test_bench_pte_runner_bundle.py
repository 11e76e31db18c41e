"""clcdeploy's pte_runner on arm64 devices that lack it, Android phones included: pushed with its own glibc and
libraries (clcdeploy/device/native/bundle.py). No phone here: the bundle runs, under qemu-user through the
virtual device's binfmt_misc registration, in a filesystem that holds nothing but itself, as Android holds no
glibc; and a bench drives it through an ADB endpoint whose shell has an arm64 Android phone's commands."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from android_shell_fixtures import HOST_PATH, android_5_shell, android_arm64_shell, fake_android  # noqa: F401
from device_fixtures import adb_home, endpoint  # noqa: F401  (fixtures)
from clcdeploy.bench.artifacts import ensure_artifacts
from clcdeploy.bench.operator_profile import UNNAMED_KERNELS
from clcdeploy.bench.session import BenchOptions, bench_device
from clcdeploy.device.native.bundle import build_bundle, launch_words

pytestmark = pytest.mark.device


@pytest.mark.parametrize("runner, artifact", [("pte_runner", "clcnet_tiny/clcnet_tiny.pte"),
                                              ("ort_runner", "clcnet_tiny/clcnet_tiny.onnx")])
def test_a_bundle_runs_the_fused_kernel_where_the_filesystem_holds_nothing_else(
        virtual_device, fused_models_dir, tmp_path, runner, artifact):
    """As on Android, which has no glibc: a chroot with the bundle, the model, the kernel's /proc and /sys, and an
    ARM /proc/cpuinfo (a phone's; under qemu the x86 host's would show, which ONNX Runtime's cpuinfo cannot read)."""
    from clcdeploy.device.virtual.rootfs import CPUINFO_TEMPLATE

    bundle = build_bundle(runner, log=lambda _: None)
    phone = tmp_path / "phone"
    (phone / "data/local/tmp").mkdir(parents=True)
    (phone / "proc").mkdir()
    (phone / "sys").mkdir()  # XNNPACK reads the CPU's features there
    (tmp_path / "cpuinfo").write_text("\n".join(CPUINFO_TEMPLATE.format(n=i) for i in range(2)))
    shutil.copytree(bundle, phone / "data/local/tmp/b")
    shutil.copy(fused_models_dir / artifact, phone / "data/local/tmp")
    library = ""
    if runner == "ort_runner":  # the custom-op library, as bench pushes it next to the model
        from clcdeploy.kernels.build import build_onnxruntime_kernels

        shutil.copy(build_onnxruntime_kernels(target="aarch64"), phone / "data/local/tmp/ops.so")
        library = " --custom_op_library=/data/local/tmp/ops.so"
    run = (f"{launch_words(runner, '/data/local/tmp/b')} --model_path=/data/local/tmp/{Path(artifact).name} "
           f"--num_executions=2 --warmup=1 --cpu_threads=2{library}")
    # A mount namespace of its own: the /proc and /sys mounts go with the command.
    script = (f"mount --bind /proc {phone}/proc && mount --bind {tmp_path}/cpuinfo {phone}/proc/cpuinfo && "
              f"mount --bind /sys {phone}/sys && exec chroot {phone} {run}")
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Iteration 2 of 2" in result.stdout and "finite=1" in result.stdout, result.stdout
    assert sorted(os.listdir(phone)) == ["data", "proc", "sys"] and not os.listdir(phone / "proc")


@pytest.mark.parametrize("sdk, shell_v2", [("29", True), ("23", False)])  # Android 10; Android 6's legacy shell
def test_a_bench_on_an_arm64_phone_pushes_pte_runner_with_its_libraries(
        android_arm64_shell, virtual_device, fused_models_dir, tiny_models_dir, tmp_path, adb_home, monkeypatch,
        sdk, shell_v2):
    """A fused .pte goes to pte_runner (the installed demo app has no fused kernel), and --per-op profiles it
    there; a standard .pte, side by side with another, to pte_runner when asked for. The bundle is pushed once.
    Before Android 7 the runner's stderr comes merged into its output, on a pty."""
    from clcdeploy.bench.runners import make_runner

    (android_arm64_shell / "sdk").write_text(sdk)
    with endpoint(tmp_path, shell_v2=shell_v2) as device:  # commands run in the host shell, with the phone's PATH
        monkeypatch.setenv("PATH", HOST_PATH)  # the harness's own: it builds the bundle
        work = f"{device.root}/data/local/tmp/clcdeploy"  # a plain endpoint serves host paths under its root
        old = Path(work) / "pte_runner-bundle-0123456789abcdef"  # an earlier clcdeploy's
        (old / "lib").mkdir(parents=True)
        (Path(work) / "keep.txt").write_text("not a bundle")
        fused = ensure_artifacts(fused_models_dir, ["clcnet_tiny"], ["pte"], export_missing=False, log=lambda _: None)
        run = bench_device(device.serial, fused, BenchOptions(["clcnet_tiny"], ["pte"], runs=3, warmup=1,
                                                              per_op=True), None, log=lambda _: None, work_dir=work)
        assert run.error is None, run.error
        [measurement] = run.measurements
        assert (measurement.runner, len(measurement.times_ms), measurement.outputs_finite) == ("pte_runner", 3, True)
        assert measurement.extra["fused_igc_kernel"] and run.facts["abi"] == "arm64-v8a"
        assert run.facts["android_version"] == {"29": "10", "23": "6.0"}[sdk]
        # --per-op: the ETDump written by the bundled runner, pulled over ADB (and removed from the phone)
        operators = measurement.extra["operators"]
        assert operators[UNNAMED_KERNELS]["count"] == 9  # clcnet_tiny's fused IGCs
        assert any(op.startswith("Convolution (NHWC, ") and e["ms"] > 0 for op, e in operators.items())  # PF32 here
        assert not list(Path(work).glob("*.etdp"))
        bundle = Path(work) / build_bundle("pte_runner", log=lambda _: None).name
        assert {"pte_runner", "ld-linux-aarch64.so.1", "libc.so.6"} <= set(os.listdir(bundle))
        assert not old.exists() and (Path(work) / "keep.txt").exists()
        stamp = (bundle / "libc.so.6").stat().st_mtime_ns

        models = ["mobilenet_v1_tiny", "clcnet_tiny"]
        standard = ensure_artifacts(tiny_models_dir, models, ["pte"], export_missing=False, log=lambda _: None)
        run = bench_device(device.serial, standard, BenchOptions(models, ["pte"], runs=2, warmup=1, side_by_side=True),
                           make_runner("pte_runner"), log=lambda _: None, work_dir=work)
        assert run.error is None, run.error
        assert [(m.model, m.runner, len(m.times_ms)) for m in run.measurements] == [
            ("mobilenet_v1_tiny", "pte_runner", 2), ("clcnet_tiny", "pte_runner", 2)]
        assert run.measurements[0].extra["side_by_side_with"] == ["mobilenet_v1_tiny/pte", "clcnet_tiny/pte"]
        assert (bundle / "libc.so.6").stat().st_mtime_ns == stamp, "pushed the unchanged bundle again"


def test_a_32_bit_phone_is_told_in_one_line_before_anything_is_pushed(android_5_shell, fused_models_dir, tmp_path,
                                                                      adb_home):
    """The paper's phone class (armeabi-v7a, Android 5.1): the executorch wheels have no 32-bit ARM build."""
    from clcdeploy.bench.runners import make_runner, runner_problem
    from clcdeploy.device import open_device

    with endpoint(tmp_path) as device:
        work = f"{device.root}/data/local/tmp/clcdeploy"
        fused = ensure_artifacts(fused_models_dir, ["clcnet_tiny"], ["pte"], export_missing=False, log=lambda _: None)
        run = bench_device(device.serial, fused, BenchOptions(["clcnet_tiny"], ["pte"], runs=2), None,
                           log=lambda _: None, work_dir=work)
        assert run.error == (
            f"device {device.serial} during clcnet_tiny/pte (choosing a runner): no runner for .pte artifacts calling "
            f"clcdeploy's fused IGC kernel: only clcdeploy's pte_runner runs them, which is built for this host and "
            f"for arm64 devices (the executorch wheels have no 32-bit ARM build): export without --fused-igc"), (
            run.error)
        run = bench_device(device.serial, fused, BenchOptions(["clcnet_tiny"], ["pte"], runs=2),
                           make_runner("pte_runner"), log=lambda _: None, work_dir=work)
        assert run.error == (
            f"device {device.serial} during preparing the pte_runner runner: clcdeploy's pte_runner is built for "
            f"this host and arm64 devices only (the runtimes' wheels have no 32-bit ARM build), and "
            f"{device.serial} runs armeabi-v7a, armeabi: pass --formats tflite, or --runner executor_runner "
            f"--runner-bin PATH (built for the device)"), run.error
        assert not list(Path(device.root).rglob("*.pte")) and not list(Path(device.root).rglob("libc.so.6"))
        with open_device(device.serial) as dev:  # what --per-op says on such a phone, before any pass
            assert runner_problem(dev, "pte_runner") == (
                f"clcdeploy's pte_runner is built for this host and arm64 devices only (the runtimes' wheels have no "
                f"32-bit ARM build), and {device.serial} runs armeabi-v7a, armeabi")
