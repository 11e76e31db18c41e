"""Command-line front end. Each area contributes its subcommands through a `commands` module
(`register(subparsers)`), imported here; those modules import torch, runtimes and the rest lazily,
inside their handlers, so `clcdeploy bench` and `clcdeploy devices` start fast and work without torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import NoReturn

from clcdeploy import __version__
from clcdeploy.errors import ClcDeployError

# Modules that define `register(subparsers)`; each adds its subcommands with `set_defaults(handler=...)`.
COMMAND_MODULES = (
    "clcdeploy.analysis.commands",
    "clcdeploy.export.commands",
    "clcdeploy.device.commands",
    "clcdeploy.bench.commands",
)


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage mistakes as one line (what was wrong, where the usage is) and exit 2, like every other error;
    argparse's default prints the whole usage block first. Subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that every cleanup an interrupt runs (temporary files,
    created folders, runner processes) runs for them too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, _frame) -> None:
    raise Terminated(signum)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="clcdeploy",
        description="Export channel-local-convolution CNNs to mobile runtimes and benchmark them on ARM devices.",
    )
    parser.add_argument("--version", action="version", version=f"clcdeploy {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for subparser in _all_subparsers(subparsers):  # `clcdeploy export NAME --debug` works too
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _all_subparsers(subparsers: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    found = []
    for subparser in dict.fromkeys(subparsers.choices.values()):
        found.append(subparser)
        for action in subparser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += _all_subparsers(action)
    return found




def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    try:
        return int(args.handler(args) or 0)
    except ClcDeployError as exc:
        if args.debug:
            raise
        print(f"clcdeploy {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated as exc:
        print(f"clcdeploy {args.command}: terminated ({exc})", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"clcdeploy {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `clcdeploy models | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 128 + signal.SIGPIPE
