"""Command-line front end. Each area contributes its subcommands through a `commands` module
(`register(subparsers)`), imported here; those modules import torch, runtimes and the rest lazily,
inside their handlers, so `clcdeploy bench` and `clcdeploy devices` start fast and work without torch.
"""

from __future__ import annotations

import argparse
import errno
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
        subparser.set_defaults(_parser=subparser)  # the innermost command's parser, for its usage errors
    return parser


def _all_subparsers(subparsers: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    found = []
    for subparser in dict.fromkeys(subparsers.choices.values()):
        found.append(subparser)
        for action in subparser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += _all_subparsers(action)
    return found


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parser.parse_args`, except that arguments nobody takes are reported by the command they were given to
    (`clcdeploy analyze: error: unrecognized arguments: x (see `clcdeploy analyze --help`)`)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        words = list(sys.argv[1:] if argv is None else argv)
        command = words.index(args.command) if getattr(args, "command", None) in words else len(words)
        before = any(word in words[:command] for word in extra)  # e.g. `clcdeploy --frobnicate models`
        (parser if before else getattr(args, "_parser", parser)).error(f"unrecognized arguments: {' '.join(extra)}")
    if hasattr(args, "_parser"):
        del args._parser
    return args


class _WatchedStdout:
    """sys.stdout as it was, remembering the error of a write or flush that failed, so that `main` can tell a
    failure to write the command's output (a full disk, /dev/full) from any other OSError."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.failure: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            self.failure = exc
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self.failure = exc
            raise

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not report the failure again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    stdout = sys.stdout = _WatchedStdout(sys.stdout)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a failing write (full disk, closed pipe) is reported here, not at interpreter exit
        return code
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
        _silence_stdout()  # no second error at interpreter exit
        return 128 + signal.SIGPIPE
    except OSError as exc:
        if args.debug or stdout.failure is not exc:
            raise
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        print(f"clcdeploy {args.command}: error: cannot write the output: {reason}; check where standard output "
              f"goes (a full disk?)", file=sys.stderr)
        _silence_stdout()
        return 2
    finally:
        sys.stdout = stdout._stream
