"""CLI: `clcdeploy devices [--json] [--connect host:port]` and `clcdeploy device start|stop|status|facts`."""

from __future__ import annotations

import argparse
import json
import math
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("devices", help="list reachable devices (host, USB ADB, running virtual devices, "
                                              "--connect host:port)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--connect", action="append", default=[], metavar="HOST:PORT",
                   help="also try this TCP ADB endpoint (repeatable)")
    p.add_argument("--auth-timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for a device to accept our key (default 10)")
    p.set_defaults(handler=cmd_devices)

    d = subparsers.add_parser("device", help="the virtual ARM64 device, and facts about any device")
    sub = d.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    s = sub.add_parser("start", help="build the arm64 rootfs if needed and start its ADB endpoint")
    s.add_argument("--port", type=int, default=5555)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--auth", choices=("accept", "refuse", "none"), default="accept",
                   help="new host keys: accept (as after the phone's prompt), refuse, or no auth at all")
    s.add_argument("--latency-ms", type=float, default=0.0, help="fault injection: delay every packet")
    s.add_argument("--drop-after-bytes", type=int, default=None, help="fault injection: drop connections")
    s.set_defaults(handler=cmd_start)
    t = sub.add_parser("stop", help="stop the virtual device's ADB endpoint(s)")
    t.add_argument("--port", type=int, default=None, help="only this port (default: all)")
    t.set_defaults(handler=cmd_stop)
    u = sub.add_parser("status", help="show running virtual-device endpoints and the rootfs cache")
    u.add_argument("--json", action="store_true")
    u.set_defaults(handler=cmd_status)
    f = sub.add_parser("facts", help="print a device's facts (model, CPU cores, frequencies, thermal)")
    f.add_argument("serial", nargs="?", default="local", help="local, host:port or a USB serial")
    f.add_argument("--auth-timeout", type=float, default=60.0, metavar="S",
                   help="seconds to wait for an ADB device to accept our key (default 60)")
    f.set_defaults(handler=cmd_facts)


def _check_auth_timeout(seconds: float) -> None:
    from clcdeploy.errors import DeviceError

    if not (seconds > 0 and math.isfinite(seconds)):
        raise DeviceError(f"--auth-timeout {seconds:g}: give a number of seconds above 0")


def cmd_devices(args: argparse.Namespace) -> int:
    from clcdeploy.device import list_devices
    from clcdeploy.errors import DeviceError

    for address in args.connect:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise DeviceError(f"--connect {address}: expected host:port, e.g. 192.168.1.20:5555")
    _check_auth_timeout(args.auth_timeout)
    rows = list_devices(args.connect, auth_timeout_s=args.auth_timeout)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    print(f"{'SERIAL':24} {'TRANSPORT':9} {'STATE':12} {'ABI':11} MODEL")
    for r in rows:
        print(f"{r.serial:24} {r.transport:9} {r.state:12} {r.abi:11} {r.model}")
        if r.detail:
            print(f"  {r.detail}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from clcdeploy.device.virtual import daemon

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    ep = daemon.start(port=args.port, host=args.host, auth=args.auth, latency_ms=args.latency_ms,
                      drop_after_bytes=args.drop_after_bytes, log=log)
    log(f"virtual arm64 device listening (pid {ep.pid}, log {ep.log}); use it with --device {ep.serial}")
    print(ep.serial)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from clcdeploy.device.errors import VirtualDeviceError
    from clcdeploy.device.virtual import daemon

    stopped = daemon.stop(args.port)
    for ep in stopped:
        print(f"stopped {ep.serial} (pid {ep.pid})")
    running = [ep.serial for ep in daemon.status() if ep.running]
    if not stopped and running:  # a wrong --port: stopping nothing is not what the user meant
        raise VirtualDeviceError(f"no virtual device on port {args.port} (running: {', '.join(running)})")
    if not stopped:
        print("no virtual device running", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from clcdeploy.device.virtual import daemon, rootfs

    endpoints = daemon.status()
    info = {"rootfs": str(rootfs.rootfs_dir()), "rootfs_built": rootfs.is_built(),
            "rootfs_state": rootfs.describe(), "endpoints": [ep.to_dict() for ep in endpoints]}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"rootfs: {info['rootfs']} ({info['rootfs_state']})")
    for ep in endpoints:
        print(f"{ep.serial:24} pid {ep.pid:<8} {'running' if ep.running else 'dead (stale pidfile)'}")
    if not endpoints:
        print("no virtual device running (start one with `clcdeploy device start`)")
    return 0


def cmd_facts(args: argparse.Namespace) -> int:
    from clcdeploy.device import open_device

    _check_auth_timeout(args.auth_timeout)
    with open_device(args.serial, auth_timeout_s=args.auth_timeout) as dev:
        print(json.dumps(dev.facts().to_dict(), indent=2))
    return 0
