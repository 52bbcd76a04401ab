"""`studio doctor`: versions, GPUs and backends — what to paste into a bug report — and a plain verdict."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="versions, GPUs and backends: what to paste into a bug report")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args) -> int:
    from studio.core.doctor import collect_report, details_text, explain, verdict_text

    report = collect_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(details_text(report))
    print()
    print(verdict_text(explain(report)))
    return 0
