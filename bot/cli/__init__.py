"""The `midbot` command line. Each module in this package that defines `register` adds subcommands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from bot import __version__
from bot.cli.common import CliError
from bot.settings import SettingsError

__all__ = ["build_parser", "main"]


# Command -> the module that registers it, so `midbot adherence` does not import the web service.
_MODULE_OF = {
    "serve": "service",
    "migrate": "service",
    "demo": "demo",
    "adherence": "adherence",
    "import": "imports",
    "plan": "plan",
    "outreach": "plan",
    "dispatch": "plan",
    "programs": "programs",
    "segments": "segments",
    "signals": "signals",
    "metrics": "signals",
    "simulator": "simulator",
    "simulate": "simulate",
    "sites": "sites",
    "users": "users",
    "tokens": "users",
    "classify": "classify",
    "tick": "tick",
}


def _modules(only: str | None) -> list[object]:
    names = [only] if only else [info.name for info in pkgutil.iter_modules(__path__)]
    modules: list[object] = []
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "register"):
            modules.append(module)
    return modules


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: with every command module's subcommands, or only the module of ``command``."""
    parser = argparse.ArgumentParser(
        prog="midbot",
        description="midbot: SMS refill reminders, side-effect check-ins and pharmacist queues "
        "for medically integrated dispensing.",
        epilog="Settings come from MIDBOT_* environment variables (see README). "
        "Run `midbot COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"midbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in sorted(_modules(_MODULE_OF.get(command or "")), key=lambda m: getattr(m, "ORDER", 50)):
        module.register(sub)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (0 ok, 1 invalid input, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    known = first in _MODULE_OF and first == (argv[0] if argv else None)
    parser = build_parser(first if known else None)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except (CliError, SettingsError) as exc:
        print(f"midbot: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
