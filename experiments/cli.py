"""The ``disentangle`` command line.

Each subcommand lives in ``experiments/commands/NAME.py``, which defines
``add_parser(subparsers)``: it adds its parser and sets ``func(args) -> int | None``.
Adding a command is adding a file.

Errors a user can cause (:class:`~disentangle.errors.UserError`, and ``OSError`` such as
an unwritable ``--workdir``) end as one line ``error: ...`` with exit status 2;
``--debug`` or ``DISENTANGLE_DEBUG=1`` prints the traceback first. Any other exception is
a bug: its traceback is printed, with exit status 1. SIGTERM is raised like Ctrl-C
(:class:`Terminated`), so that cleanups run (a sweep stops its worker processes); the
exit status is then 128 + the signal number.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
import threading
import traceback
from collections.abc import Iterator

from disentangle import xla_options
from disentangle.errors import UserError
from experiments import commands

DEBUG_ENV = "DISENTANGLE_DEBUG"


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt so that ``finally`` blocks run."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disentangle",
        description="Train, score, sweep and look at disentangled representations.")
    debug_help = f"print the traceback of an error (or set {DEBUG_ENV}=1)"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").add_parser(sub)
    for p in sub.choices.values():  # `disentangle train ... --debug` works too
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help=debug_help)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse; ``key=value`` overrides may also follow options (``... --workdir W a=1``)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(
                "=" not in e or e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    return args


def debug_requested(args: argparse.Namespace) -> bool:
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return bool(getattr(args, "debug", False)) or env not in ("", "0", "false", "no")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only).

    An interrupt raised where Python cannot propagate it (a garbage-collector callback,
    ``__del__``) would only be printed as "Exception ignored"; the unraisable hook sends
    the signal again 50 ms later instead (from a timer thread, so that it lands outside
    the callback), so that Ctrl-C and SIGTERM are never lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    def unraisable(info):
        if isinstance(info.exc_value, KeyboardInterrupt):  # swallowed: deliver it again
            terminated = isinstance(info.exc_value, Terminated)
            again = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM if terminated
                                                    else signal.SIGINT))
            again.daemon = True
            again.start()
        else:
            previous_hook(info)

    previous, previous_hook = signal.signal(signal.SIGTERM, handler), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook


def main(argv: list[str] | None = None) -> int:
    xla_options.prepare_process()  # before anything runs on a JAX backend
    args = parse_args(build_parser(), argv)
    debug = debug_requested(args)
    try:
        with sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as err:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 128 + int(err.args[0] if isinstance(err, Terminated) else signal.SIGINT)
    except (UserError, OSError) as err:
        if debug:
            traceback.print_exc()
        message = " ".join(str(err).split())  # one line, whatever the message holds
        hint = "" if debug else " (--debug shows the traceback)"
        print(f"error: {message}" + (hint if isinstance(err, OSError) else ""),
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
