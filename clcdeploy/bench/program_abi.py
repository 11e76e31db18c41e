"""Whether a device can run a native program: the Android ABI its ELF header names against the device's ABIs, so
that a runner built for another CPU is refused in one line before it is pushed, not reported as a crash."""

from __future__ import annotations

from pathlib import Path

from clcdeploy.device.base import Device

# ELF e_machine -> Android ABI name
ELF_MACHINES = {3: "x86", 40: "armeabi-v7a", 62: "x86_64", 183: "arm64-v8a"}
# `uname -m` -> the ABIs a Linux device without getprop runs (a 64-bit ARM kernel may lack 32-bit support: not
# assumed)
KERNEL_ABIS = {"aarch64": ["arm64-v8a"], "armv7l": ["armeabi-v7a"], "armv8l": ["armeabi-v7a"],
               "x86_64": ["x86_64", "x86"], "i686": ["x86"]}


def program_abi(path: Path) -> str | None:
    """The ABI `path` was built for, or None if it is not an ELF program (a script, say)."""
    with open(path, "rb") as fh:
        header = fh.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"ELF machine {machine}")


def device_abis(device: Device) -> list[str]:
    """The ABIs the device runs: Android's ro.product.cpu.abilist, else from its kernel's `uname -m`."""
    out = device.shell("getprop ro.product.cpu.abilist 2>/dev/null; echo @; uname -m 2>/dev/null",
                       timeout_s=30).stdout
    abilist, _, machine = out.partition("@")
    return [abi for abi in abilist.strip().split(",") if abi] or KERNEL_ABIS.get(machine.strip(), [])


def abi_problem(program: Path, device: Device, what: str) -> str | None:
    """Why `device` cannot run `program` (`what` names it in the message), or None if it can or cannot tell."""
    abi = program_abi(program)
    abis = device_abis(device) if abi else []
    if not abi or not abis or abi in abis:
        return None
    return (f"{what} {program} is built for {abi}, and {device.serial} runs {', '.join(abis)}: build it for the "
            f"device")
