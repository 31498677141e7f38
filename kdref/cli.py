"""The ``kdref`` command: ``kdref check [MODULE]`` runs the property suite against kdref's own tiers, or against
the contract functions of MODULE (and/or single functions given with ``--fn``); ``kdref train`` and ``kdref demo``
run the training harness."""

from __future__ import annotations

import argparse
import sys

from .conformance.profiles import DEFAULT_PROFILE, PROFILES


def _check(args: argparse.Namespace) -> int:
    from .conformance import report

    head = report.header()
    tested = args.module or ("functions " + ", ".join(args.fn) if args.fn else "kdref's own tiers")
    print(f"kdref check of {tested} — " + ", ".join(f"{k} {v}" for k, v in head.items()) + f", profile {args.profile}")
    extra = [f"--hypothesis-profile={args.profile}"]
    if args.module:
        extra.append(f"--kdref-impl={args.module}")
    extra += [f"--kdref-fn={fn}" for fn in args.fn]
    for flag in ("array", "dtype", "device"):
        if getattr(args, flag):
            extra.append(f"--kdref-{flag}={getattr(args, flag)}")
    if args.k:
        extra += ["-k", args.k]
    code, outcomes = report.run_suite(extra, show_pytest=args.verbose)
    if not outcomes:
        print(f"no conformance test ran (pytest exit code {code})", file=sys.stderr)
        return code or 1
    print(report.table(outcomes))
    failed = report.failures(outcomes, [a for a in extra if a.startswith("--kdref-")])
    counts = {s: sum(o.status == s for o in outcomes) for s in ("holds", "FAILS", "skip")}
    if failed:
        print("\nFailures:\n\n" + failed)
    print(
        f"\n{counts['holds']} hold, {counts['FAILS']} fail, {counts['skip']} skipped (not provided or not applicable)"
    )
    if args.json:
        report.write_json(args.json, code, outcomes)
        print(f"JSON report written to {args.json}")
    return 0 if code == 0 and counts["FAILS"] == 0 else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kdref`` console script."""
    parser = argparse.ArgumentParser(prog="kdref", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run the property suite and print a function × property table")
    check.add_argument("module", nargs="?", help="module exposing contract functions (default: kdref's own tiers)")
    check.add_argument(
        "--fn",
        action="append",
        default=[],
        metavar="NAME=MODULE:ATTR",
        help="test a single function under a contract name; repeatable",
    )
    check.add_argument("--array", choices=("torch", "numpy"), help="the array library the implementation takes")
    check.add_argument("--dtype", metavar="DTYPES", help="comma-separated dtypes (torch): float64,float32,...")
    check.add_argument("--device", metavar="DEVICE", help="torch device, e.g. cuda")
    check.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE, help="Hypothesis profile")
    check.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    check.add_argument("-k", metavar="EXPR", help="only properties matching this pytest -k expression")
    check.add_argument("--verbose", action="store_true", help="show pytest's own output")
    check.set_defaults(run=_check)
    from .harness.cli import add_subcommands  # light: the harness itself is imported only when train/demo run

    add_subcommands(sub)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
