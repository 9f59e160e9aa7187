"""The device self-test: which vector widths does this device's compiler really get right?

At first use of a device, lazygrad builds and runs a small kernel per vector family (float,
int; double and long where there is fp64) and width (2..16 lanes, up to the target's bits),
exercising what generated kernels use (templates/probe.cl.j2), and checks the values against
numpy. A width whose build fails, whose kernel is missing from the program, whose build log
says the vector does not fit the registers ("... changes the ABI", PoCL/LLVM on a CPU that
the compiler does not know), or whose values are wrong is dropped.

A bad compile can abort the process from inside the driver (LLVM ERROR, SIGSEGV), so the
probe runs in a child process (`python -m lazygrad.runtime.probe`). The child first builds every
kernel as one program (one compile); if that fails or the child dies, it is run again
kernel by kernel, each verdict printed before the next build starts, so a crash names the
width that caused it. The verdict is cached on disk, keyed by device, driver, lazygrad
version and probe source: it costs once per machine.

Public names: ProbeItem, ProbeReport, probe_items, run_probe, render_probe, expected_outputs.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lazygrad.version import __version__
from lazygrad.runtime.faults import corrupts_probe, missing_kernels, refusal
from lazygrad.target import VECTOR_SIZES, DeviceInfo
from lazygrad import templating  # templating.template: the Oclgrind run spies on which get used

GROUPS = 8                     # work-items per probe kernel
CHILD_TIMEOUT_S = 300.0        # a child that hangs this long counts as a crash of its item
ABI_WARNING = "changes the ABI"


@dataclass(frozen=True)
class Family:
    cl: str          # scalar type
    itemsize: int
    np: str          # numpy dtype name
    mask: str        # type of a comparison's result vector
    partner: str     # same-size type of the other kind (conversions)
    is_float: bool


FAMILIES = {
    "float": Family("float", 4, "float32", "int", "int", True),
    "int": Family("int", 4, "int32", "int", "float", False),
    "double": Family("double", 8, "float64", "long", "long", True),
    "long": Family("long", 8, "int64", "long", "double", False),
}
_NP_OF = {"float": "float32", "int": "int32", "double": "float64", "long": "int64"}


@dataclass(frozen=True)
class ProbeItem:
    family: str
    lanes: int

    @property
    def fam(self) -> Family:
        return FAMILIES[self.family]

    @property
    def bits(self) -> int:
        return self.fam.itemsize * 8 * self.lanes

    @property
    def name(self) -> str:
        return f"lg_probe_{self.family}{self.lanes}"

    def __str__(self) -> str:
        return f"{self.family}{self.lanes}"


@dataclass
class ProbeReport:
    """Per item: "ok" or why it was dropped; `verified` the (bytes, lanes) every family of
    that size passed."""

    verdicts: dict[str, str]
    seconds: float
    cached: bool
    children: int = 1
    notes: list[str] = field(default_factory=list)

    def verified(self, items: list[ProbeItem], allow_abi: bool) -> frozenset[tuple[int, int]]:
        good: dict[tuple[int, int], bool] = {}
        for it in items:
            v = self.verdicts.get(str(it), "not run")
            ok = v == "ok" or (allow_abi and v == "ok (abi warning)")
            key = (it.fam.itemsize, it.lanes)
            good[key] = good.get(key, True) and ok
        return frozenset(k for k, ok in good.items() if ok)


def probe_items(bits: int, fp64: bool) -> list[ProbeItem]:
    fams = ["float", "int"] + (["double", "long"] if fp64 else [])
    return [ProbeItem(f, w) for f in fams for w in VECTOR_SIZES if FAMILIES[f].itemsize * 8 * w <= bits]


def render_probe(it: ProbeItem, fp64: bool) -> str:
    f = it.fam
    partner = f.partner if (fp64 or f.partner != "double") else "float"
    return templating.template("probe.cl.j2").render(name=it.name, t=f.cl, w=it.lanes, m=f.mask, p=partner,
                                          is_float=f.is_float, fp64=fp64)


def probe_input(it: ProbeItem) -> np.ndarray:
    n = it.lanes * GROUPS
    i = np.arange(n)
    if it.fam.is_float:
        return (i * 0.37 - 5.0).astype(it.fam.np)
    return (i % 23 - 7).astype(it.fam.np)


def expected_outputs(it: ProbeItem, fp64: bool) -> tuple[np.ndarray, ...]:
    """What probe.cl.j2 computes, in numpy: (out, pout, bout, tot)."""
    f = it.fam
    a = probe_input(it)
    dt = np.dtype(f.np)
    acc = (a * dt.type(10)).astype(dt)
    mask = a < 3
    if f.is_float:
        x = a.astype(np.float64)
        e = np.maximum(np.exp(x * 0.125) + np.tanh(x * 0.25), np.sqrt(np.abs(x))).astype(dt)
    else:
        e = (np.maximum(a ^ 5, (a << 2) >> 1) - np.minimum(a, 7)).astype(dt)
    s = np.where(mask, e, acc).astype(dt)
    partner = f.partner if (fp64 or f.partner != "double") else "float"
    pout = (np.trunc(a) if f.is_float else a).astype(_NP_OF[partner])
    tot = s.reshape(GROUPS, it.lanes).astype(np.float64).sum(axis=1).astype(dt)
    return s, pout, mask.astype(np.uint8), tot


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    if got.dtype.kind == "f":
        rtol = 1e-5 if got.dtype.itemsize == 4 else 1e-12
        return bool(np.allclose(got, want, rtol=rtol, atol=rtol))
    return bool(np.array_equal(got, want))


# --- the child process -----------------------------------------------------------------------
def _child(platform_index: int, device_index: int, items: list[ProbeItem], fp64: bool, combined: bool,
           faults: frozenset[str]) -> None:
    """Prints one JSON line per item ({"item", "verdict"}); in per-item mode a line
    {"start": item} before each build, so the parent can name the item a crash came from."""
    import pyopencl as cl

    dev = cl.get_platforms()[platform_index].get_devices()[device_index]
    ctx = cl.Context([dev])
    queue = cl.CommandQueue(ctx, dev)

    def say(**kw) -> None:
        print(json.dumps(kw), flush=True)

    def build(source: str):
        why = refusal(faults, source)
        if why:
            raise RuntimeError(why)
        prg = cl.Program(ctx, source).build("-cl-std=CL1.2")
        log = prg.get_build_info(dev, cl.program_build_info.LOG) or ""
        have = set(prg.get_info(cl.program_info.KERNEL_NAMES).split(";")) - missing_kernels(faults, source)
        return prg, log, have

    def run(prg, it: ProbeItem) -> str:
        a = probe_input(it)
        want = expected_outputs(it, fp64)
        mf = cl.mem_flags
        bufs = [cl.Buffer(ctx, mf.READ_WRITE, max(1, w.nbytes)) for w in want]
        abuf = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=a)
        getattr(prg, it.name)(queue, (GROUPS,), None, bufs[0], abuf, *bufs[1:])
        got = [np.empty_like(w) for w in want]
        for g, b in zip(got, bufs):
            cl.enqueue_copy(queue, g, b)
        queue.finish()
        if corrupts_probe(faults, it.bits):
            got[0] = got[0] + 1
        bad = [k for k, (g, w) in enumerate(zip(got, want)) if not _close(g, w)]
        return "ok" if not bad else f"wrong values (outputs {bad})"

    def verdict(prg, log_lines: list[str], have: set[str], it: ProbeItem) -> str:
        if it.name not in have:
            return "kernel missing from the built program"
        try:
            v = run(prg, it)
        except Exception as e:  # noqa: BLE001 - any driver failure drops the width
            return f"launch failed: {e}"
        if v == "ok" and any(ABI_WARNING in ln for ln in log_lines):
            return "ok (abi warning)"
        return v

    sources = {str(it): render_probe(it, fp64) for it in items}
    if combined:
        # one program; each kernel's build-log lines found by the line numbers of its source
        text, spans, line = [], {}, 1
        for it in items:
            src = sources[str(it)]
            n = src.count("\n") + 1
            spans[str(it)] = (line, line + n)
            text.append(src)
            line += n
        try:
            prg, log, have = build("\n".join(text))
        except Exception as e:  # noqa: BLE001
            say(combined_failed=str(e)[:500])
            return
        by_item: dict[str, list[str]] = {str(it): [] for it in items}
        for ln in log.splitlines():
            for key, (lo, hi) in spans.items():
                if any(f".cl:{k}:" in ln for k in range(lo, hi)):
                    by_item[key].append(ln)
        for it in items:
            say(item=str(it), verdict=verdict(prg, by_item[str(it)], have, it))
        return
    for it in items:
        say(start=str(it))
        try:
            prg, log, have = build(sources[str(it)])
        except Exception as e:  # noqa: BLE001
            say(item=str(it), verdict=f"build failed: {str(e).strip().splitlines()[-1][:300] if str(e).strip() else e}")
            continue
        say(item=str(it), verdict=verdict(prg, log.splitlines(), have, it))


def _spawn(args: list[str]) -> tuple[list[dict], int, str]:
    env = dict(os.environ, PYOPENCL_COMPILER_OUTPUT="0", PYTHONWARNINGS="ignore")
    try:
        p = subprocess.run([sys.executable, "-m", "lazygrad.runtime.probe", *args], capture_output=True, text=True,
                           timeout=CHILD_TIMEOUT_S, env=env, stdin=subprocess.DEVNULL)
        out, rc, err = p.stdout, p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc, err = -9, "timed out"
    lines = []
    for ln in out.splitlines():
        try:
            lines.append(json.loads(ln))
        except json.JSONDecodeError:
            pass
    return lines, rc, (err or "").strip().splitlines()[-1:] and (err or "").strip().splitlines()[-1] or ""


def _cache_file(cache_dir: str, info: DeviceInfo, items: list[ProbeItem], faults: frozenset[str]) -> Path:
    h = hashlib.sha256()
    src = "".join(render_probe(it, info.fp64) for it in items)
    for part in (info.name, info.version, info.driver, info.platform, __version__, src,
                 ",".join(sorted(faults)), sys.executable):
        h.update(part.encode())
        h.update(b"\0")
    return Path(cache_dir) / "probe" / f"{h.hexdigest()[:32]}.json"


def run_probe(info: DeviceInfo, platform_index: int, device_index: int, items: list[ProbeItem],
              faults: frozenset[str], cache_dir: str | None) -> ProbeReport:
    """Every item's verdict, from the disk cache or child processes."""
    t0 = time.perf_counter()
    path = _cache_file(cache_dir, info, items, faults) if cache_dir else None
    if path is not None:
        try:
            data = json.loads(path.read_text())
            if set(data["verdicts"]) == {str(it) for it in items}:
                return ProbeReport(data["verdicts"], time.perf_counter() - t0, True, 0, data.get("notes", []))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    base = [str(platform_index), str(device_index), "1" if info.fp64 else "0", ",".join(sorted(faults)) or "-"]
    verdicts: dict[str, str] = {}
    notes: list[str] = []
    lines, rc, err = _spawn(base + ["combined", ",".join(map(str, items))])
    children = 1
    for ln in lines:
        if "item" in ln:
            verdicts[ln["item"]] = ln["verdict"]
        elif "combined_failed" in ln:
            notes.append(f"one-program build failed: {ln['combined_failed'].strip().splitlines()[-1] if ln['combined_failed'].strip() else ''}")
    if rc != 0 or len(verdicts) < len(items):
        if rc != 0:
            notes.append(f"one-program probe child exited with {rc} ({err})")
        verdicts = {}
        todo = list(items)
        while todo:
            children += 1
            lines, rc, err = _spawn(base + ["each", ",".join(map(str, todo))])
            started = None
            for ln in lines:
                if "start" in ln:
                    started = ln["start"]
                elif "item" in ln:
                    verdicts[ln["item"]] = ln["verdict"]
                    started = None
            if started is not None:  # the child died building or running this one
                verdicts[started] = f"crashed the process (exit {rc}: {err[:200]})"
            elif rc != 0 and not lines:
                for it in todo:  # the child could not even start: nothing is verified
                    verdicts[str(it)] = f"probe process failed (exit {rc}: {err[:200]})"
            todo = [it for it in todo if str(it) not in verdicts]
    report = ProbeReport(verdicts, time.perf_counter() - t0, False, children, notes)
    if path is not None:
        _write_atomic(path, json.dumps({"verdicts": verdicts, "notes": notes}, indent=1))
    return report


def _write_atomic(path: Path, text: str) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass  # a read-only cache: the probe runs again next time
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _parse_items(s: str) -> list[ProbeItem]:
    out = []
    for tok in s.split(","):
        fam = tok.rstrip("0123456789")
        out.append(ProbeItem(fam, int(tok[len(fam):])))
    return out


if __name__ == "__main__":
    pi, di, fp64, faults, mode, items = sys.argv[1:7]
    _child(int(pi), int(di), _parse_items(items), fp64 == "1", mode == "combined",
           frozenset() if faults == "-" else frozenset(faults.split(",")))
