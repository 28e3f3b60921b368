"""`python -m handset <command> ...`: the standalone simulators.

Each command is a subparser; a module adds its own with an `add_arguments(parser)` function that
sets `func` (called with the parsed arguments, returning the exit status). To add a command, add
a line to `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "smsc": ("handset.smsc", "run the SMPP 3.4 SMSC simulator"),
    "lab": ("handset.lab", "run the SMSC with the fleet's cards in virtual phones"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m handset", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(subparsers.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
