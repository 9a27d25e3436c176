"""`python -m bench NAME [--quick] [key=value ...]`: run one benchmark, write its JSON, add a row to docs/benchmarks.md.

A benchmark is a module `bench/NAME.py` with `run(quick: bool, **params) -> dict`. The dict holds a `figure`
(one line, the headline ratio or number) and whatever details the benchmark wants kept in the JSON.
Ratios are measured in one run against a baseline: this machine is shared and noisy.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import platform
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TABLE = ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            cpu += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def available() -> list[str]:
    return sorted(p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="benchmark to run: " + ", ".join(available()))
    parser.add_argument("params", nargs="*", help="key=value parameters passed to the benchmark")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that it works")
    parser.add_argument("--no-record", action="store_true", help="do not add a row to docs/benchmarks.md")
    args = parser.parse_args(argv)
    if not args.name:
        print("\n".join(available()))
        return 0
    if args.name not in available():
        parser.error(f"unknown benchmark {args.name!r}; available: {', '.join(available())}")
    params = dict(p.split("=", 1) for p in args.params)
    module = importlib.import_module(f"bench.{args.name}")
    result = module.run(quick=args.quick, **params)
    now = dt.datetime.now(dt.timezone.utc)
    result.update(
        benchmark=args.name,
        date=now.strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine(),
        command="python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.name}-{now.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    if not args.quick and not args.no_record:
        record(result)
    return 0


def record(result: dict) -> None:
    if not TABLE.exists():
        TABLE.write_text(
            "# Benchmarks\n\nOne row per recorded run of `python -m bench NAME`; the full JSON lies in bench/results/.\n\n"
            "| benchmark | figure | command | date | machine |\n|---|---|---|---|---|\n"
        )
    row = f"| {result['benchmark']} | {result.get('figure', '')} | `{result['command']}` | {result['date']} | {result['machine']} |\n"
    with open(TABLE, "a") as fh:
        fh.write(row)


if __name__ == "__main__":
    sys.exit(main())
