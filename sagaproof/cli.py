# PYTHON_ARGCOMPLETE_OK
"""Command-line entry point.

Exit codes (a CI pipeline gates on them): 0 every property holds, 1 a property
is violated, 3 none is violated but one is unknown, 2 bad input or usage.
Subcommands live one per module in :mod:`sagaproof.commands`; each module has
``register(subparsers)`` and sets ``func`` on its parser.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_VIOLATED = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a writer whose reader went away; never
1, which would read as "violated"."""


def version() -> str:
    """The installed distribution's version (``0+unknown`` from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("sagaproof")
    except PackageNotFoundError:
        return "0+unknown"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _Version(argparse.Action):
    # argparse's own version action needs the string up front; reading the
    # installed metadata costs more than the rest of --help.
    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"sagaproof {version()}")
        parser.exit(EXIT_OK)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand module registered."""
    parser = _Parser(
        prog="sagaproof",
        description="Verify sagas and event workflows, and run them durably.",
    )
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True,
                                parser_class=_Parser)
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


EXTRAS: dict[str, str] = {
    "z3": "smt", "sympy": "smt", "psycopg": "postgres", "nbformat": "notebooks",
    "nbclient": "notebooks", "matplotlib": "notebooks", "graphviz": "notebooks",
    "jupyterlab": "jupyter", "redis": "redis",
}
"""Optional modules and the extra that installs each."""


def _missing_extra(exc: BaseException | None) -> str | None:
    """The SAGA012 diagnostic for an optional dependency that is not
    installed, or None when ``exc`` is something else."""
    while exc is not None and not isinstance(exc, ModuleNotFoundError):
        exc = exc.__cause__ or exc.__context__
    if exc is None or not exc.name:
        return None
    extra = EXTRAS.get(exc.name.split(".")[0])
    if extra is None:
        return None
    return (f"<command line>: error SAGA012: this command needs {exc.name!r}, "
            f"from the {extra!r} extra, which is not installed\n"
            f"  help: pip install 'sagaproof[{extra}]'")


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion (bash, zsh, fish) through argcomplete, when installed.

    argcomplete answers only when the shell's completion hook set
    ``_ARGCOMPLETE``; otherwise this is one environment lookup.
    """
    import os

    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    _complete(parser)
    args = parser.parse_args(argv)
    # Whether this call is the process's command line (not a library call of
    # main([...])): only then may a command end the process itself.
    args.process_entry = argv is None
    try:
        code: int = args.func(args)
        # Flush here, not at interpreter exit, so a closed pipe is seen below.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``sagaproof check ... | head``): stop quietly,
        # as Unix tools do, and keep Python from complaining at exit. The
        # verdict was not delivered, so the exit code must not claim one.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("sagaproof: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # saga_models is imported here, not at start-up, so ``--help`` and
        # ``--version`` stay cheap.
        from saga_models import InvalidDefinition, SagaError

        if isinstance(exc, InvalidDefinition):
            print(exc.render(), file=sys.stderr)
            return EXIT_USAGE
        missing = _missing_extra(exc)
        if missing is not None:
            print(missing, file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, SagaError):
            print(f"sagaproof: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise
    return code
