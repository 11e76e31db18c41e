"""Command-line front end. Each area contributes its subcommands through a `commands` module
(`register(subparsers)`), imported here; those modules import torch, runtimes and the rest lazily,
inside their handlers, so `clcdeploy bench` and `clcdeploy devices` start fast and work without torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from clcdeploy import __version__
from clcdeploy.errors import ClcDeployError

# Modules that define `register(subparsers)`; each adds its subcommands with `set_defaults(handler=...)`.
COMMAND_MODULES = (
    "clcdeploy.analysis.commands",
    "clcdeploy.export.commands",
    "clcdeploy.device.commands",
    "clcdeploy.bench.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clcdeploy",
        description="Export channel-local-convolution CNNs to mobile runtimes and benchmark them on ARM devices.",
    )
    parser.add_argument("--version", action="version", version=f"clcdeploy {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser




def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except ClcDeployError as exc:
        if args.debug:
            raise
        print(f"clcdeploy {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"clcdeploy {args.command}: interrupted", file=sys.stderr)
        return 130
