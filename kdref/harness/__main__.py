"""``python -m kdref.harness [train|demo] ...`` and ``torchrun --nproc-per-node N -m kdref.harness train ...``.

Without a subcommand, ``train`` is assumed.
"""

from __future__ import annotations

import argparse
import sys

from .cli import add_subcommands


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "demo", "-h", "--help"):
        argv = ["train", *argv]
    parser = argparse.ArgumentParser(prog="python -m kdref.harness")
    sub = parser.add_subparsers(dest="command", required=True)
    add_subcommands(sub)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
