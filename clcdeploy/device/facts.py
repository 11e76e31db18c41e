"""Device facts from getprop, /proc/cpuinfo, cpufreq and thermal zones, read with one shell command each."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from clcdeploy.device.base import DeviceFacts

if TYPE_CHECKING:
    from clcdeploy.device.base import Device

# (implementer, part) -> core name; implementer 0x41 = Arm, 0x51 = Qualcomm, 0x53 = Samsung.
CORE_NAMES = {
    ("0x41", "0xc05"): "Cortex-A5", ("0x41", "0xc07"): "Cortex-A7", ("0x41", "0xc08"): "Cortex-A8",
    ("0x41", "0xc09"): "Cortex-A9", ("0x41", "0xc0d"): "Cortex-A12", ("0x41", "0xc0f"): "Cortex-A15",
    ("0x41", "0xc0e"): "Cortex-A17", ("0x41", "0xd01"): "Cortex-A32", ("0x41", "0xd03"): "Cortex-A53",
    ("0x41", "0xd04"): "Cortex-A35", ("0x41", "0xd05"): "Cortex-A55", ("0x41", "0xd07"): "Cortex-A57",
    ("0x41", "0xd08"): "Cortex-A72", ("0x41", "0xd09"): "Cortex-A73", ("0x41", "0xd0a"): "Cortex-A75",
    ("0x41", "0xd0b"): "Cortex-A76", ("0x41", "0xd0d"): "Cortex-A77", ("0x41", "0xd41"): "Cortex-A78",
    ("0x41", "0xd44"): "Cortex-X1", ("0x41", "0xd46"): "Cortex-A510", ("0x41", "0xd47"): "Cortex-A710",
    ("0x41", "0xd48"): "Cortex-X2", ("0x41", "0xd4d"): "Cortex-A715", ("0x41", "0xd4e"): "Cortex-X3",
    ("0x41", "0xd80"): "Cortex-A520", ("0x41", "0xd81"): "Cortex-A720", ("0x41", "0xd82"): "Cortex-X4",
    ("0x51", "0x800"): "Kryo 2xx Gold", ("0x51", "0x801"): "Kryo 2xx Silver", ("0x51", "0x802"): "Kryo 3xx Gold",
    ("0x51", "0x803"): "Kryo 3xx Silver", ("0x51", "0x804"): "Kryo 4xx Gold", ("0x51", "0x805"): "Kryo 4xx Silver",
    ("0x53", "0x001"): "Exynos M1", ("0x53", "0x002"): "Exynos M3",
}

SECTION = "@@clc@@"
PROPS = ("ro.product.model", "ro.product.manufacturer", "ro.build.version.release", "ro.product.cpu.abi",
         "ro.hardware", "ro.kernel.qemu", "ro.boot.qemu")

# One round trip: sections separated by markers; every part tolerates missing files.
FACTS_SCRIPT = "; ".join([
    *(f"echo '{SECTION}prop {p}'; getprop {p} 2>/dev/null" for p in PROPS),
    f"echo '{SECTION}uname'; uname -m 2>/dev/null",  # none on Android 5, whose adbd merges stderr into stdout
    f"echo '{SECTION}cpuinfo'; cat /proc/cpuinfo 2>/dev/null",
    # Online cores (a phone takes idle ones offline), and all of them
    f"echo '{SECTION}nproc'; (nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo)",
    f"echo '{SECTION}present'; cat /sys/devices/system/cpu/present 2>/dev/null",
    f"echo '{SECTION}cpufreq'; for c in /sys/devices/system/cpu/cpu[0-9]*; do "
    "echo \"${c##*/} $(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null || echo -) $(cat $c/cpufreq/scaling_governor 2>/dev/null || echo -)\"; done",
    f"echo '{SECTION}thermal'",
])
THERMAL_SCRIPT = ("for z in /sys/class/thermal/thermal_zone*; do [ -r $z/temp ] && "
                  "echo \"$(cat $z/type 2>/dev/null || echo ${z##*/}) $(cat $z/temp 2>/dev/null)\"; done; true")


def decode_core(implementer: str, part: str) -> str:
    name = CORE_NAMES.get((implementer.lower(), part.lower()))
    return name or f"unknown ({implementer}/{part})"


def parse_sections(text: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(SECTION):
            current = line[len(SECTION):].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {k: "\n".join(v).strip() for k, v in sections.items()}


def parse_cpuinfo(text: str) -> tuple[str, str, list[str]]:
    """(hardware, implementer, per-core parts) from /proc/cpuinfo."""
    hardware, implementer, parts = "", "", []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "hardware":
            hardware = value
        elif key == "cpu implementer":
            implementer = value
        elif key == "cpu part":
            parts.append(value)
        elif key == "model name" and not hardware:
            hardware = value
    return hardware, implementer, parts


def count_cpus(cpu_list: str) -> int | None:
    """The number of CPUs in a kernel CPU list such as `0-3` or `0,2-5` (None if it is not one)."""
    total = 0
    for part in cpu_list.strip().split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        total += int(last or first) - int(first) + 1
    return total or None


def parse_thermal(text: str) -> dict[str, float]:
    """`type millidegrees` lines -> {type: degrees C}; repeated types get a numeric suffix."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.strip().rpartition(" ")
        if not name or not re.fullmatch(r"-?\d+", value):
            continue
        temp = int(value)
        celsius = temp / 1000.0 if abs(temp) >= 200 else float(temp)  # some zones report degrees directly
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name}#{n}"
        out[key] = celsius
    return out


def read_thermal(device: "Device") -> dict[str, float]:
    result = device.shell(THERMAL_SCRIPT, timeout_s=30)
    return parse_thermal(result.stdout) if result.exit_code == 0 else {}


def collect_facts(device: "Device") -> DeviceFacts:
    sections = parse_sections(device.shell(FACTS_SCRIPT, timeout_s=60).stdout)
    props = {key.split(" ", 1)[1]: value for key, value in sections.items() if key.startswith("prop ")}
    hardware, implementer, parts = parse_cpuinfo(sections.get("cpuinfo", ""))
    freqs: list[int | None] = []
    governors: list[str | None] = []
    for line in sections.get("cpufreq", "").splitlines():
        fields = line.split()
        if len(fields) == 3:
            freqs.append(int(fields[1]) if fields[1].isdigit() else None)
            governors.append(None if fields[2] == "-" else fields[2])
    nproc = sections.get("nproc", "").strip()
    online = int(nproc) if nproc.isdigit() else len(parts)
    present = count_cpus(sections.get("present", ""))
    qemu = props.get("ro.kernel.qemu") or props.get("ro.boot.qemu")
    return DeviceFacts(
        serial=device.serial,
        model=props.get("ro.product.model", ""),
        manufacturer=props.get("ro.product.manufacturer", ""),
        android_version=props.get("ro.build.version.release", ""),
        abi=props.get("ro.product.cpu.abi", ""),
        kernel_machine=sections.get("uname", ""),
        cpu_hardware=hardware or props.get("ro.hardware", ""),
        cpu_implementer=implementer,
        cpu_parts=parts,
        cpu_core_names=[decode_core(implementer, p) for p in parts] if implementer else [],
        cores=present or online,
        cores_online=online,
        max_freq_khz=freqs,
        governors=governors,
        thermal_c=read_thermal(device),
        is_emulated=(qemu == "1") if qemu else (False if props.get("ro.product.model") else None),
    )
