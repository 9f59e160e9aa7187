"""lazygrad benchmark suite: ``python -m bench [--quick] [--only CASE] [--json PATH]``.

``run()`` is the programmatic entry (used by ``__main__`` and by tests): it runs the timed
cases (all contenders interleaved, median of several runs) and the probe cases (cold start,
peak memory in fresh subprocesses), writes ``<stem>.md``, ``<stem>.json`` and
``<stem>_chain.png`` to the output folder (stem ``latest`` or ``latest-quick``) and returns
the results dict.

Public names: run, DEFAULT_OUT_DIR.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "results"
SCHEMA_VERSION = 1


def _handles(names: list[str], isolate: bool, log_dir: Path) -> list[Any]:
    from bench.contenders import BY_NAME
    from bench.contenders.remote import RemoteContender
    handles: list[Any] = []
    for name in names:
        c = BY_NAME[name]
        remote = bool(c.env) or c.remote or (isolate and name.startswith("lazygrad"))
        handles.append(RemoteContender(c, log_dir / f"{name}.log") if remote else c)
    return handles


def _select_contenders(contenders: list[str] | None) -> list[str]:
    from bench.contenders import BY_NAME, CONTENDERS
    if not contenders:
        return [c.name for c in CONTENDERS]
    unknown = [n for n in contenders if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown contender(s) {unknown}; known: {list(BY_NAME)}")
    return [c.name for c in CONTENDERS if c.name in contenders]  # keep table order


def run(quick: bool = True, out_dir: str | Path | None = None, only: list[str] | str | None = None,
        contenders: list[str] | None = None, json_path: str | Path | None = None,
        runs: int | None = None, warmup: int | None = None, probes: bool = True,
        isolate: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run the benchmarks and write the report; returns the results dict.

    quick: small sizes, 3 runs, torch.compile only on the issue-2 chain (< 3 minutes).
    only: case names, groups or kinds (globs or substrings) to run, e.g. ["softmax*"].
    contenders: names to run (default all), e.g. ["numpy", "torch", "tinygrad"].
    json_path: where to write the JSON (default <out_dir>/<stem>.json).
    probes: also run cold-start and peak-memory probes (fresh subprocesses).
    isolate: run lazygrad in a worker process too (a crash then cannot end the run).
    """
    from tqdm import tqdm

    from bench import cases as case_table
    from bench.contenders import BY_NAME
    from bench.harness import Settings, run_timed_case
    from bench.machine import CpuMeter, machine_info
    from bench.plot import plot_chains
    from bench.probes import run_probe_case
    from bench.report import to_markdown, write_json, write_text_atomic

    start = time.perf_counter()
    meter = CpuMeter()
    out = Path(out_dir) if out_dir is not None else DEFAULT_OUT_DIR
    stem = "latest-quick" if quick else "latest"
    only_list = [only] if isinstance(only, str) else only
    names = _select_contenders(contenders)
    settings = Settings(quick=quick, runs=runs or (3 if quick else 7),
                        warmup=warmup if warmup is not None else (1 if quick else 2))
    probe_runs = 1 if quick else 3
    timed = case_table.select(case_table.timed_cases(quick), only_list)
    probe_list = case_table.select(case_table.probe_cases(quick), only_list) if probes else []
    probe_names = [n for n in names if not (quick and BY_NAME[n].quick_kinds is not None)]

    results: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "meta": {"quick": quick, "runs": settings.runs, "warmup": settings.warmup,
                 "settle_s": settings.settle_s, "wake_s": settings.wake_s,
                 "probe_runs": probe_runs, "contenders": names, "only": only_list,
                 "descriptions": {n: BY_NAME[n].description for n in names},
                 "machine": machine_info()},
        "cases": [], "probes": [],
    }
    handles = _handles(names, isolate, out / "logs")
    total = len(timed) * len(handles) + len(probe_list) * len(probe_names)
    bar = tqdm(total=total, unit="run", disable=not progress, dynamic_ncols=True)
    try:
        for case in timed:
            bar.set_description(case.name)
            case_results = run_timed_case(
                case, handles, settings,
                on_progress=lambda n: (bar.set_postfix_str(n), bar.update(0)))
            bar.update(len(handles))
            results["cases"].append({"name": case.name, "group": case.group, "kind": case.kind,
                                     "params": case.params, "bytes": case.bytes,
                                     "flops": case.flops, "metric": case.metric,
                                     "reps": case.reps, "results": case_results})
        for h in handles:  # free worker processes before the probes spawn theirs
            if hasattr(h, "stop"):
                h.stop()
        for probe in probe_list:
            bar.set_description(probe.name)
            entry: dict[str, Any] = {"name": probe.name, "group": probe.group,
                                     "probe": probe.probe, "workload": probe.workload,
                                     "params": probe.params, "results": {}}
            for n in probe_names:
                bar.set_postfix_str(n)
                entry["results"][n] = run_probe_case(probe, BY_NAME[n], probe_runs,
                                                     out / "logs" / "probes.log")
                bar.update(1)
            results["probes"].append(entry)
    finally:
        bar.close()
        for h in handles:
            if hasattr(h, "stop"):
                h.stop()

    results["meta"]["elapsed_s"] = time.perf_counter() - start
    results["meta"]["other_processes"] = meter.report()
    png = plot_chains(results, out / f"{stem}_chain.png")
    results["meta"]["plot"] = png.name if png else None
    json_file = Path(json_path) if json_path is not None else out / f"{stem}.json"
    write_json(results, json_file)
    write_text_atomic(out / f"{stem}.md", to_markdown(results))
    results["meta"]["files"] = {"json": str(json_file), "markdown": str(out / f"{stem}.md"),
                                "plot": str(png) if png else None}
    return results
