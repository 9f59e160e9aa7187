"""Command line: ``python -m bench --help`` (run from the repository root)."""
from __future__ import annotations

import argparse
import sys

from bench import DEFAULT_OUT_DIR, run


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=(
        "lazygrad vs numpy / torch / torch.compile / tinygrad / hand-written OpenCL. "
        "Writes <out>/latest[-quick].md, .json and _chain.png."))
    p.add_argument("--quick", action="store_true",
                   help="small sizes, 3 runs, few torch.compile cases (< 3 minutes)")
    p.add_argument("--only", action="append", metavar="CASE",
                   help="run only cases whose name/group/kind matches (glob or substring); "
                        "repeatable or comma-separated, e.g. --only softmax,matmul_512")
    p.add_argument("--contenders", metavar="NAMES",
                   help="comma-separated contenders, e.g. numpy,torch,tinygrad,opencl-hand")
    p.add_argument("--json", metavar="PATH", help="write the JSON results here")
    p.add_argument("--out", metavar="DIR", default=str(DEFAULT_OUT_DIR),
                   help="output folder (default bench/results)")
    p.add_argument("--runs", type=int, help="timed runs per case (default 3 quick, 7 full)")
    p.add_argument("--warmup", type=int, help="warm-up steps (default 1 quick, 2 full)")
    p.add_argument("--no-probes", action="store_true", help="skip cold-start / memory probes")
    p.add_argument("--isolate", action="store_true",
                   help="run lazygrad in a worker process too (survives crashes)")
    p.add_argument("--list", action="store_true", help="list cases and contenders, then exit")
    return p


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _list(quick: bool) -> None:
    from bench.cases import probe_cases, timed_cases
    from bench.contenders import CONTENDERS
    for c in timed_cases(quick):
        print(f"{c.group:12s} {c.name:34s} {c.describe()}")
    for pc in probe_cases(quick):
        print(f"{pc.group:12s} {pc.name:34s} {pc.workload} {pc.params}")
    print()
    for ct in CONTENDERS:
        print(f"{ct.name:18s} {ct.description}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        _list(args.quick)
        return 0
    results = run(quick=args.quick, out_dir=args.out, only=_split(args.only),
                  contenders=_split([args.contenders] if args.contenders else None),
                  json_path=args.json, runs=args.runs, warmup=args.warmup,
                  probes=not args.no_probes, isolate=args.isolate)
    files = results["meta"]["files"]
    print(f"wrote {files['markdown']}, {files['json']}" +
          (f", {files['plot']}" if files["plot"] else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
