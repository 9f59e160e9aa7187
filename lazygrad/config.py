"""Settings: one typed record of every knob lazygrad has, seeded from `LAZYGRAD_*` variables.

Stages never read `os.environ` themselves: they ask `settings()`, which parses the variables
once per distinct environment (tests that `monkeypatch.setenv` see their change at once) and
lets a `with override(fuse=False): ...` block replace fields for the code inside it.

`Settings.codegen_key()` is the part of the settings that changes generated code; the plan
cache and the program cache include it in their keys, so changing a setting mid-process never
reuses a stale plan or program.

Public names: Settings, settings, override, ENV.
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
    conv_cfg: str = ""           # LAZYGRAD_CONV_CFG (code): "lanes,channels,local" for measurements
    matmul_pack: str = "auto"    # LAZYGRAD_MATMUL_PACK (code): auto | 1 | 0
    tune: bool = True            # LAZYGRAD_TUNE (code): time matmul candidates (0: the heuristic)
    device: str = ""             # LAZYGRAD_DEVICE: index or substring of platform/device name
    cache: bool = True           # LAZYGRAD_CACHE: program binaries (and probe verdicts) on disk
    cache_dir: str = ""          # LAZYGRAD_CACHE_DIR: default $XDG_CACHE_HOME/lazygrad
    check_nan: bool = False      # LAZYGRAD_CHECK_NAN: stop at the first kernel that makes NaN/Inf
    check_index: bool = False    # LAZYGRAD_CHECK_INDEX: a lazy tensor index out of range raises at realize
    exact_buffers: bool = False  # LAZYGRAD_EXACT_BUFFERS: buffers of exactly the needed size
    pool_bytes: int = -1         # LAZYGRAD_POOL_BYTES: buffer pool budget (-1: a quarter of memory)
    probe: bool = True           # LAZYGRAD_PROBE: self-test vector widths at first use (0: trust)
    fault: frozenset[str] = frozenset()  # LAZYGRAD_FAULT (code): injected device faults, for tests

    def codegen_key(self) -> tuple:
        return (self.fuse, self.multi_output, self.target, self.conv, self.conv_cfg,
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
    "LAZYGRAD_CONV_CFG": ("conv_cfg", lambda v: (v or "").strip()),
    "LAZYGRAD_MATMUL_PACK": ("matmul_pack", lambda v: (v or "auto").strip() or "auto"),
    "LAZYGRAD_TUNE": ("tune", lambda v: _flag(v, True)),
    "LAZYGRAD_DEVICE": ("device", lambda v: (v or "").strip().lower()),
    "LAZYGRAD_CACHE": ("cache", lambda v: _flag(v, True)),
    "LAZYGRAD_CACHE_DIR": ("cache_dir", lambda v: v or ""),
    "LAZYGRAD_CHECK_NAN": ("check_nan", lambda v: _flag(v, False)),
    "LAZYGRAD_CHECK_INDEX": ("check_index", lambda v: _flag(v, False)),
    "LAZYGRAD_EXACT_BUFFERS": ("exact_buffers", lambda v: _flag(v, False)),
    "LAZYGRAD_POOL_BYTES": ("pool_bytes", lambda v: _int("LAZYGRAD_POOL_BYTES", v, -1)),
    "LAZYGRAD_PROBE": ("probe", lambda v: _flag(v, True)),
    "LAZYGRAD_FAULT": ("fault", lambda v: frozenset(p.strip() for p in (v or "").split(",") if p.strip())),
}
_NAMES = tuple(ENV)
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


def settings() -> Settings:
    """The settings in force here: the environment's, with any `override` block applied."""
    values = tuple(map(os.environ.get, _NAMES)) + (os.environ.get("LAZYGRAD_VEC"),)
    s = _env_cache.get(values)
    if s is None:
        s = _env_cache[values] = _from_env(values[:-1])
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
