"""Devices to benchmark on: the host (`local`) and ADB devices (TCP `host:port` or USB serial).

No torch here: benchmarking works on a machine without it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from clcdeploy.device.base import CommandResult, Device, DeviceFacts, Progress, sha256_file
from clcdeploy.device.errors import UnknownDeviceError
from clcdeploy.device.local import LocalDevice

__all__ = ["CommandResult", "Device", "DeviceFacts", "DeviceInfo", "LocalDevice", "Progress", "list_devices",
           "open_device", "sha256_file"]


def open_device(serial: str | None = None, **options) -> Device:
    """None or "local" -> the host; "host:port" -> ADB over TCP; anything else -> a USB serial.

    Options for ADB: key_path, auth_timeout_s, transport_timeout_s, work_dir. For local: work_dir.
    """
    if serial in (None, "", "local"):
        return LocalDevice(work_dir=options.get("work_dir"))
    from clcdeploy.device.adb import AdbDevice

    if ":" not in serial:
        from clcdeploy.device.adb import usb_serials

        known = usb_serials()
        if known and serial not in known:
            raise UnknownDeviceError(f"no device with serial {serial!r}; available: local, {', '.join(known)}")
    return AdbDevice(serial, **options)


@dataclass
class DeviceInfo:
    """One row of `clcdeploy devices`."""

    serial: str
    transport: str  # local | tcp | usb
    state: str  # device | unauthorized | offline | busy
    model: str = ""
    abi: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def list_devices(connect: list[str] | tuple[str, ...] = (), *, auth_timeout_s: float = 10.0) -> list[DeviceInfo]:
    """The host, USB ADB devices, running virtual devices and each `host:port` in `connect`, with their state."""
    import platform

    from clcdeploy.device.adb import usb_serials
    from clcdeploy.device.virtual.daemon import status
    from clcdeploy.errors import DeviceError

    rows = [DeviceInfo("local", "local", "device", model=platform.node(), abi=platform.machine())]
    tcp = dict.fromkeys([*(ep.serial for ep in status() if ep.running), *connect])  # in order, once each
    targets = [(s, "usb") for s in usb_serials()] + [(s, "tcp") for s in tcp]
    for serial, transport in targets:
        try:
            from clcdeploy.device.adb import AdbDevice

            with AdbDevice(serial, auth_timeout_s=auth_timeout_s) as dev:
                props = dev.shell("getprop ro.product.model; getprop ro.product.cpu.abi", timeout_s=30).stdout.splitlines()
                rows.append(DeviceInfo(serial, transport, "device", model=props[0] if props else "",
                                       abi=props[1] if len(props) > 1 else ""))
        except DeviceError as exc:
            state = {"AuthenticationError": "unauthorized", "DeviceBusyError": "busy"}.get(type(exc).__name__, "offline")
            rows.append(DeviceInfo(serial, transport, state, detail=str(exc)))
    return rows
