"""Turn a results dict into markdown and JSON files.

Ratios are speedups: "2.0×" in the "vs numpy" column means twice as fast as numpy on that
case (numpy's median time / this contender's median time).

Public names: to_markdown, write_json, fmt_number.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.contenders import REFERENCE_CONTENDERS

SKIP, NA = "—", "n/a"


def fmt_number(v: float | None) -> str:
    """Three significant digits without scientific notation."""
    if v is None:
        return ""
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _headline(case: dict[str, Any], r: dict[str, Any]) -> str:
    """The one number for the summary matrix."""
    if r.get("status") == "skip":
        return SKIP
    if r.get("status") != "ok" or "median_ms" not in r:
        return NA
    mark = "" if r.get("check", "ok") == "ok" else " ⚠"
    if case["metric"] == "steps/s":
        return f"{fmt_number(r['steps_per_s'])}/s{mark}"
    if case["metric"] == "us/call":
        return f"{fmt_number(r['us_per_call'])} µs{mark}"
    return f"{fmt_number(r['median_ms'])} ms{mark}"


def _rate(case: dict[str, Any], r: dict[str, Any]) -> str:
    parts = []
    if "gbps" in r:
        parts.append(f"{fmt_number(r['gbps'])} GB/s")
    if "gflops" in r and case["group"] in ("matmul", "conv", "training"):
        parts.append(f"{fmt_number(r['gflops'])} GFLOP/s")
    if "steps_per_s" in r:
        parts.append(f"{fmt_number(r['steps_per_s'])} steps/s")
    return ", ".join(parts)


def _ratio(case_results: dict[str, Any], name: str, ref: str) -> str:
    mine, other = case_results.get(name, {}), case_results.get(ref, {})
    if name == ref or "median_ms" not in mine or "median_ms" not in other:
        return ""
    return f"{other['median_ms'] / mine['median_ms']:.2f}×"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _meta_lines(meta: dict[str, Any]) -> list[str]:
    m = meta["machine"]
    dev = m.get("opencl_device", {})
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v)
    lines = [
        f"- date: {m.get('date')}; mode: {'quick' if meta['quick'] else 'full'}; "
        f"{meta['runs']} timed runs (median), {meta['warmup']} warm-up; "
        f"total {fmt_number(meta.get('elapsed_s'))} s",
        f"- CPU: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GiB; {m.get('platform')}",
        f"- OpenCL: {dev.get('name', dev.get('error', '?'))}, driver {dev.get('driver', '?')}, "
        f"{dev.get('opencl', '')}",
        f"- lazygrad {m.get('lazygrad_target', 'target unknown')}",
        f"- python {m.get('python')}; {versions}",
    ]
    others = meta.get("other_processes")
    if others:
        frac = others["other_load_fraction"]
        busy = " — **the machine was shared: numbers are noisy**" if frac > 0.05 else ""
        lines.append(f"- other processes used {others['other_cpu_s']:.1f} CPU-s during the run "
                     f"({frac:.0%} of the machine){busy}")
    if m.get("lazygrad_commit"):
        lines.append(f"- lazygrad commit {m['lazygrad_commit']}")
    if m.get("env"):
        lines.append("- env: " + ", ".join(f"{k}={v}" for k, v in m["env"].items()))
    return lines


def _timed_sections(results: dict[str, Any], names: list[str]) -> list[str]:
    cases = results["cases"]
    out = ["## Summary", "",
           "Median per operation (lower is better), except the training step (steps/s, "
           f"higher is better). {SKIP} = not implemented / not run, {NA} = failed (see "
           "Errors), ⚠ = output differs from the reference.", ""]
    out += _table(["case"] + names,
                  [[c["name"]] + [_headline(c, c["results"].get(n, {})) for n in names]
                   for c in cases])
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in cases:
        groups.setdefault(c["group"], []).append(c)
    refs = [r for r in REFERENCE_CONTENDERS if r in names]
    for group, group_cases in groups.items():
        out += ["", f"## {group}", ""]
        rows = []
        for c in group_cases:
            for n in names:
                r = c["results"].get(n)
                if not r or r.get("status") == "skip":
                    continue
                check = r.get("check", "")
                if "rel_err" in r:
                    check = f"{check} ({r['rel_err']:.1e})"
                rows.append([c["name"], n, _headline(c, r), _rate(c, r)]
                            + [_ratio(c["results"], n, ref) for ref in refs]
                            + ["" if r.get("kernels") is None else str(r["kernels"]), check])
        out += _table(["case", "contender", "median", "rate"] + [f"vs {r}" for r in refs]
                      + ["kernels", "check"], rows)
    return out


def _probe_sections(results: dict[str, Any], names: list[str]) -> list[str]:
    probes = results.get("probes", [])
    out: list[str] = []
    cold = [p for p in probes if p["probe"] == "cold"]
    mem = [p for p in probes if p["probe"] == "memory"]
    if cold:
        out += ["", "## cold start", "",
                "Fresh process to first result (ms), empty compile caches vs. the caches the "
                "cold run left behind.", ""]
        rows = []
        for p in cold:
            for n in names:
                r = p["results"].get(n)
                if not r or r.get("status") == "skip":
                    continue
                if r.get("status") != "ok":
                    rows.append([p["name"], n, NA, "", "", "", ""])
                    continue
                rows.append([p["name"], n] + [fmt_number(r[k]) for k in (
                    "cold_to_first_result_ms", "warm_to_first_result_ms", "cold_import_ms",
                    "cold_first_step_ms", "warm_first_step_ms")])
        out += _table(["case", "contender", "cold", "warm", "import", "first step cold",
                       "first step warm"], rows)
    if mem:
        out += ["", "## peak memory", "",
                "MiB. *step extra*: peak resident memory added during one warm step; "
                "*over baseline*: peak RSS minus RSS after imports and inputs (includes "
                "compilers); *peak RSS*: whole process (VmHWM).", ""]
        rows = []
        for p in mem:
            for n in names:
                r = p["results"].get(n)
                if not r or r.get("status") == "skip":
                    continue
                if r.get("status") != "ok":
                    rows.append([p["name"], n, NA, "", "", ""])
                    continue
                rows.append([p["name"], n] + [fmt_number(r[k]) for k in (
                    "step_peak_extra_mb", "peak_over_baseline_mb", "maxrss_mb", "inputs_mb")])
        out += _table(["case", "contender", "step extra", "over baseline", "peak RSS", "inputs"],
                      rows)
    return out


def _errors(results: dict[str, Any]) -> list[str]:
    lines = []
    for c in results["cases"] + results.get("probes", []):
        for n, r in c["results"].items():
            if r.get("status") == "n/a":
                lines.append(f"- {c['name']} / {n}: {r.get('error', '')}")
            elif r.get("check") not in (None, "ok"):
                lines.append(f"- {c['name']} / {n}: check {r.get('check')} "
                             f"{r.get('rel_err', r.get('check_error', ''))}")
    return ["", "## Errors", ""] + lines if lines else []


def to_markdown(results: dict[str, Any]) -> str:
    """The full human-readable report."""
    meta = results["meta"]
    names = meta["contenders"]
    lines = ["# lazygrad benchmarks", ""] + _meta_lines(meta) + [""]
    lines += ["Contenders: " + "; ".join(f"**{n}** {meta['descriptions'].get(n, '')}"
                                        for n in names), ""]
    lines += _timed_sections(results, names)
    lines += _probe_sections(results, names)
    lines += _errors(results)
    if meta.get("plot"):
        lines += ["", f"![time vs chain length]({meta['plot']})"]
    return "\n".join(lines) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + rename (no torn files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(results: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(results, indent=1, default=str) + "\n")
