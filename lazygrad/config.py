"""Settings: one typed record of every knob lazygrad has, seeded from `LAZYGRAD_*` variables.

Stages never read `os.environ` themselves: they ask `settings()`, which parses the variables
once per distinct environment (tests that `monkeypatch.setenv` see their change at once) and
lets a `with override(fuse=False): ...` block replace fields for the code inside it.

`Settings.codegen_key()` is the part of the settings that changes generated code; the plan
cache and the program cache include it in their keys, so changing a setting mid-process never
reuses a stale plan or program.

Public names: Settings, settings, override, ENV, HELP.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import Iterator


def _flag(v: str | None, default: bool) -> bool:
    if v is None or v.strip() == "":
        return default
    return v.strip() not in ("0", "false", "False", "no", "off")


def _float(name: str, v: str | None, default: float) -> float:
    if v is None or v.strip() == "":
        return default
    try:
        return float(v)
    except ValueError:
        raise ValueError(f"lazygrad: {name}={v!r} is not a number") from None


def _progress_mode(v: str | None) -> str:
    v = (v or "auto").strip().lower() or "auto"
    if v in ("auto", "1", "0"):
        return v
    return "1" if _flag(v, True) else "0"  # true/false/on/off spelled any other way


def _int(name: str, v: str | None, default: int) -> int:
    if v is None or v.strip() == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"lazygrad: {name}={v!r} is not a whole number") from None


@dataclass(frozen=True)
class Settings:
    """Every setting, with its variable in the field's comment. Fields marked (code) change
    the generated kernels and are part of `codegen_key()`."""

    debug: int = 0               # LAZYGRAD_DEBUG: 1 launches, 2 timings, 3 fusion reasons, 4 sources
    fuse: bool = True            # LAZYGRAD_FUSE (code): 0 = one kernel per primitive
    multi_output: bool = True    # LAZYGRAD_MULTI_OUTPUT (code): kernels with several outputs
    target: str = "auto"         # LAZYGRAD_TARGET (code): auto | 128 | 256 | 512 (vector bits) | gpu
    conv: str = "auto"           # LAZYGRAD_CONV (code): auto | direct | im2col
    attention: bool = True       # LAZYGRAD_ATTENTION (code): the fused attention kernels (0: the plain graph)
    conv_cfg: str = ""           # LAZYGRAD_CONV_CFG (code): "lanes,channels,local" for measurements
    matmul_pack: str = "auto"    # LAZYGRAD_MATMUL_PACK (code): auto | 1 | 0
    tune: bool = True            # LAZYGRAD_TUNE (code): time matmul candidates (0: the heuristic)
    device: str = ""             # LAZYGRAD_DEVICE: index or substring of platform/device name
    cache: bool = True           # LAZYGRAD_CACHE: program binaries (and probe verdicts) on disk
    cache_dir: str = ""          # LAZYGRAD_CACHE_DIR: default $XDG_CACHE_HOME/lazygrad
    check_nan: bool = False      # LAZYGRAD_CHECK_NAN: stop at the first kernel that makes NaN/Inf
    check_index: bool = False    # LAZYGRAD_CHECK_INDEX: a lazy tensor index out of range raises at realize
    verify: bool = False         # LAZYGRAD_VERIFY: check the graph and lowered IR at realize (IRError)
    exact_buffers: bool = False  # LAZYGRAD_EXACT_BUFFERS: buffers of exactly the needed size
    pool_bytes: int = -1         # LAZYGRAD_POOL_BYTES: buffer pool budget (-1: a quarter of memory)
    probe: bool = True           # LAZYGRAD_PROBE: self-test vector widths at first use (0: trust)
    plan_cache: int = 512        # LAZYGRAD_PLAN_CACHE: plans kept (least recently used dropped)
    program_cache: int = 2048    # LAZYGRAD_PROGRAM_CACHE: built programs kept in memory
    fault: frozenset[str] = frozenset()  # LAZYGRAD_FAULT (code): injected device faults, for tests
    lazy_repr: bool = False      # LAZYGRAD_LAZY_REPR: repr/str of a tensor never run kernels
    progress: str = "auto"       # LAZYGRAD_PROGRESS: auto | 1 | 0, a line while a plan builds for > 1 s
    dist_timeout: float = 300.0  # LAZYGRAD_DIST_TIMEOUT: seconds a lazygrad.distributed wait may take

    def codegen_key(self) -> tuple:
        return (self.fuse, self.multi_output, self.target, self.conv, self.attention, self.conv_cfg,
                self.matmul_pack, self.tune, self.probe, tuple(sorted(self.fault)))

    @property
    def resolved_cache_dir(self) -> str:
        return self.cache_dir or os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lazygrad")


# variable -> (field, parser); the one place a LAZYGRAD_* name is spelled
ENV: dict[str, tuple[str, object]] = {
    "LAZYGRAD_DEBUG": ("debug", lambda v: _int("LAZYGRAD_DEBUG", v, 0) if (v or "").strip().lstrip("-").isdigit() else 0),
    "LAZYGRAD_FUSE": ("fuse", lambda v: _flag(v, True)),
    "LAZYGRAD_MULTI_OUTPUT": ("multi_output", lambda v: _flag(v, True)),
    "LAZYGRAD_TARGET": ("target", lambda v: (v or "auto").strip().lower() or "auto"),
    "LAZYGRAD_CONV": ("conv", lambda v: (v or "auto").strip() or "auto"),
    "LAZYGRAD_ATTENTION": ("attention", lambda v: _flag(v, True)),
    "LAZYGRAD_CONV_CFG": ("conv_cfg", lambda v: (v or "").strip()),
    "LAZYGRAD_MATMUL_PACK": ("matmul_pack", lambda v: (v or "auto").strip() or "auto"),
    "LAZYGRAD_TUNE": ("tune", lambda v: _flag(v, True)),
    "LAZYGRAD_DEVICE": ("device", lambda v: (v or "").strip().lower()),
    "LAZYGRAD_CACHE": ("cache", lambda v: _flag(v, True)),
    "LAZYGRAD_CACHE_DIR": ("cache_dir", lambda v: v or ""),
    "LAZYGRAD_CHECK_NAN": ("check_nan", lambda v: _flag(v, False)),
    "LAZYGRAD_CHECK_INDEX": ("check_index", lambda v: _flag(v, False)),
    "LAZYGRAD_VERIFY": ("verify", lambda v: _flag(v, False)),
    "LAZYGRAD_EXACT_BUFFERS": ("exact_buffers", lambda v: _flag(v, False)),
    "LAZYGRAD_POOL_BYTES": ("pool_bytes", lambda v: _int("LAZYGRAD_POOL_BYTES", v, -1)),
    "LAZYGRAD_PROBE": ("probe", lambda v: _flag(v, True)),
    "LAZYGRAD_PLAN_CACHE": ("plan_cache", lambda v: _int("LAZYGRAD_PLAN_CACHE", v, 512)),
    "LAZYGRAD_PROGRAM_CACHE": ("program_cache", lambda v: _int("LAZYGRAD_PROGRAM_CACHE", v, 2048)),
    "LAZYGRAD_FAULT": ("fault", lambda v: frozenset(p.strip() for p in (v or "").split(",") if p.strip())),
    "LAZYGRAD_LAZY_REPR": ("lazy_repr", lambda v: _flag(v, False)),
    "LAZYGRAD_PROGRESS": ("progress", lambda v: _progress_mode(v)),
    "LAZYGRAD_DIST_TIMEOUT": ("dist_timeout", lambda v: _float("LAZYGRAD_DIST_TIMEOUT", v, 300.0)),
}
_NAMES = tuple(ENV)

# variable -> (values it takes, what it does): the documentation of every variable, printed as
# the README's and the site's settings table by docs/gen_readme.py (the assert below keeps a
# new variable from landing undocumented). LAZYGRAD_VEC is read outside ENV (a legacy alias).
HELP: dict[str, tuple[str, str]] = {
    "LAZYGRAD_DEBUG": ("`0` (default) .. `4`", "print to stderr while running: 1 one line per realize (kernels, plan "
                       "cache, programs compiled/cached, host time) and the chosen target; 2 also a line per kernel "
                       "launch (sizes, device time, GB/s, GFLOP/s) the first time a plan runs, and the device time "
                       "of every realize (a repeated step: one line); 3 also the fusion decisions; 4 also each "
                       "new kernel's source"),
    "LAZYGRAD_FUSE": ("`1` (default), `0`", "`0`: one kernel per primitive op, to measure what fusion buys "
                      "(results are the same)"),
    "LAZYGRAD_MULTI_OUTPUT": ("`1` (default), `0`", "`0`: no kernels with several outputs that share inputs"),
    "LAZYGRAD_TARGET": ("`auto` (default), `128`, `256`, `512`, `gpu`", "force the vector register width in bits, "
                        "or the GPU code paths (narrow vectors, work-group reductions); the probe still checks the "
                        "widths"),
    "LAZYGRAD_CONV": ("`auto` (default), `direct`, `im2col`", "the conv2d code path"),
    "LAZYGRAD_ATTENTION": ("`1` (default), `0`", "softmax(q kᵀ scale + mask) v as one fused kernel forward and "
                           "three backward (0: the plain matmul/softmax graph, for comparisons)"),
    "LAZYGRAD_CONV_CFG": ("`lanes,channels,local`", "a fixed direct-convolution configuration, for measurements "
                          "(default: chosen from the target)"),
    "LAZYGRAD_MATMUL_PACK": ("`auto` (default), `1`, `0`", "pack matmul's second operand into panels: by size "
                             "(`auto`), always, never"),
    "LAZYGRAD_TUNE": ("`1` (default), `0`", "time the matmul kernel candidates on first use; `0`: take the "
                      "heuristic's choice"),
    "LAZYGRAD_DEVICE": ("index or name substring", "which OpenCL device (default: PoCL's CPU device); a "
                        "comma-separated list under `lazygrad.distributed`: the entry of each rank's local rank"),
    "LAZYGRAD_CACHE": ("`1` (default), `0`", "keep compiled program binaries and probe verdicts on disk"),
    "LAZYGRAD_CACHE_DIR": ("a directory", "where the disk cache lives (default `$XDG_CACHE_HOME/lazygrad`, "
                           "`~/.cache/lazygrad`)"),
    "LAZYGRAD_CHECK_NAN": ("`0` (default), `1`", "stop at the first kernel that makes a NaN or Inf, naming it and "
                           "its inputs"),
    "LAZYGRAD_CHECK_INDEX": ("`0` (default), `1`", "check lazy (computed) tensor indices at realize: an "
                             "out-of-range one raises IndexError naming the op, the index and the size "
                             "(without it an out-of-range lazy index selects 0); the tests run with it on"),
    "LAZYGRAD_VERIFY": ("`0` (default), `1`", "check the invariants of the graph IR on every realize and of every "
                        "lowered kernel (arity, shapes, dtypes, view args, operands defined before use, ...): the "
                        "first violation raises `IRError` naming the node or instruction; for lazygrad's own "
                        "bugs, the tests run with it on"),
    "LAZYGRAD_EXACT_BUFFERS": ("`0` (default), `1`", "buffers of exactly the needed size, never reused (for "
                               "memory checkers; memory grows)"),
    "LAZYGRAD_POOL_BYTES": ("bytes, `-1` (default)", "budget of the pool of freed device buffers kept for reuse "
                            "(`-1`: a quarter of device memory, at most 4 GiB)"),
    "LAZYGRAD_PROBE": ("`1` (default), `0`", "`0` trusts the target description without probing (the run-time "
                       "fallback remains)"),
    "LAZYGRAD_PLAN_CACHE": ("entries, `512` (default)", "plans kept in memory; the least recently used go "
                            "first (evictions counted in `lg.counters.plan_evictions`)"),
    "LAZYGRAD_PROGRAM_CACHE": ("entries, `2048` (default)", "built programs kept in memory (least recently "
                               "used go first; the disk cache still has them)"),
    "LAZYGRAD_FAULT": ("`reject512`, `missing512`, `wrongprobe512`, `abort512`", "tests only: a device wrapper "
                       "that fails 512-bit vectors the way real drivers do"),
    "LAZYGRAD_LAZY_REPR": ("`0` (default), `1`", "`repr`/`str` of a tensor never run kernels: they show shape, "
                           "dtype and the pending op instead of values"),
    "LAZYGRAD_PROGRESS": ("`auto` (default), `1`, `0`", "a progress line on stderr while a realize renders "
                          "and compiles a new plan for more than a second: `auto` on a terminal only, `1` "
                          "always, `0` never"),
    "LAZYGRAD_DIST_TIMEOUT": ("seconds, `300` (default)", "how long a `lazygrad.distributed` collective "
                              "(gradient all-reduce, broadcast, barrier) may wait for the other ranks before the "
                              "job is aborted with an error naming the wait"),
    "LAZYGRAD_VEC": ("lanes of float32", "deprecated: read as `LAZYGRAD_TARGET` = lanes x 32 bits"),
}
assert set(HELP) == set(ENV) | {"LAZYGRAD_VEC"}, "every variable is documented in HELP"
_TARGETS = ("auto", "128", "256", "512", "gpu")
assert {f for f, _ in ENV.values()} == {f.name for f in fields(Settings)}, "every field has a variable"


def _from_env(values: tuple[str | None, ...]) -> Settings:
    kw = {ENV[name][0]: ENV[name][1](v) for name, v in zip(_NAMES, values)}  # type: ignore[operator]
    legacy = os.environ.get("LAZYGRAD_VEC")
    if legacy and kw["target"] == "auto":
        # the old lane count (of float32) as vector bits: LAZYGRAD_VEC=8 -> 256-bit vectors
        kw["target"] = str(max(128, min(512, _int("LAZYGRAD_VEC", legacy, 8) * 32)))
    if kw["target"] not in _TARGETS:
        raise ValueError(f"lazygrad: LAZYGRAD_TARGET={kw['target']!r}; expected one of {', '.join(_TARGETS)}")
    return Settings(**kw)


_env_cache: dict[tuple, Settings] = {}
_override: ContextVar[dict | None] = ContextVar("lazygrad_settings_override", default=None)


def _raw_reader():
    """A function returning the raw values of every LAZYGRAD_* variable, as fast as the
    platform allows: this runs several times per realize, and 17 `os.environ.get` calls cost
    ~100 us (each encodes its key and decodes its value); looking the pre-encoded keys up in
    the mapping's backing dict costs ~1 us and still sees `monkeypatch.setenv` at once."""
    names = _NAMES + ("LAZYGRAD_VEC",)
    data = getattr(os.environ, "_data", None)
    try:
        keys = tuple(os.environ.encodekey(n) for n in names)  # type: ignore[attr-defined]
    except AttributeError:
        data = None
    if not isinstance(data, dict):
        return lambda: tuple(map(os.environ.get, names))
    return lambda: tuple(map(data.get, keys))


_raw = _raw_reader()


def settings() -> Settings:
    """The settings in force here: the environment's, with any `override` block applied."""
    raw = _raw()
    s = _env_cache.get(raw)
    if s is None:
        values = tuple(map(os.environ.get, _NAMES + ("LAZYGRAD_VEC",)))
        if len(_env_cache) > 256:  # a process that keeps changing its variables
            _env_cache.clear()
        s = _env_cache[raw] = _from_env(values[:-1])
    over = _override.get()
    return replace(s, **over) if over else s


@contextmanager
def override(**changes) -> Iterator[Settings]:
    """Replace settings fields inside a `with` block (the variables stay as they are)."""
    bad = set(changes) - {f.name for f in fields(Settings)}
    if bad:
        raise TypeError(f"lazygrad.config.override: unknown settings {sorted(bad)}")
    if "target" in changes and changes["target"] not in _TARGETS:
        raise ValueError(f"lazygrad: target={changes['target']!r}; expected one of {', '.join(_TARGETS)}")
    token = _override.set({**(_override.get() or {}), **changes})
    try:
        yield settings()
    finally:
        _override.reset(token)
