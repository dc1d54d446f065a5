"""``perpcheck``: run | report | calc | venues.

Every command prints a readable line and exits non-zero on bad input; no traceback reaches a user
for a mistake of theirs (``ConfigError``) or a venue's refusal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness.errors import PerpcheckError

__all__ = ["main"]


#: Commands defined here (and in harness.calculator): with one of them, the entry-point
#: commands are not loaded (their imports would only slow the command down).
BUILTIN_COMMANDS = frozenset({"run", "report", "compare", "venues", "defects", "scenarios", "calc"})


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser; given ``argv`` naming a built-in command, without the
    entry-point commands (``perpcheck --help`` and unknown commands list them all)."""
    from harness import calculator, runner

    parser = argparse.ArgumentParser(
        prog="perpcheck",
        description="Conformance harness for perpetual-futures venues.",
        epilog=runner.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    builtin = argv is not None and len(argv) > 0 and argv[0] in BUILTIN_COMMANDS
    runner.register(sub, plugin_commands=not builtin)
    calculator.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except PerpcheckError as exc:
        print(f"perpcheck {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"perpcheck {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
