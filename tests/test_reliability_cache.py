"""Reliability (issue 8): faults of the on-disk program cache.

A truncated, empty, garbage or misplaced cache entry, a cache directory that cannot be
written, a failing write, and two processes compiling the same kernels at once must all end
with correct results, no crash, at most one warning, and no corrupt or stray file left.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

import lazygrad as lg
from lazygrad.runtime import device as rt
from lazygrad.counters import counters
from lazygrad.dtypes import float32

ROOT = Path(__file__).resolve().parent.parent


def _kernel_source(name: str, scale: float) -> str:
    return (f"__kernel void {name}(__global float* restrict out, __global const float* restrict a) {{\n"
            f"  int i = get_global_id(0); out[i] = a[i] * {scale}f + 1.0f; }}\n")


def _run(pc: rt.ProgramCache, name: str, src: str, scale: float) -> None:
    """Build `src` through the cache `pc`, launch it and check its output."""
    prg = pc.get(name, src)
    dev = lg.device()
    k = dev.cl.Kernel(prg, name)
    a = rt.Buffer.from_numpy(np.arange(16, dtype=np.float32), float32)
    out = rt.Buffer(16, float32)
    rt.launch(k, (16,), None, [out, a])
    np.testing.assert_allclose(out.numpy(), np.arange(16) * scale + 1)


def _entries(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.name.endswith(".bin") and not p.name.startswith(".tmp-"))


def _assert_clean(d: Path) -> None:
    """Every entry in `d` is valid (magic, own key, checksum) and no temp file is left."""
    pc = rt.ProgramCache(lg.device())
    assert not [p for p in d.iterdir() if p.name.startswith(".tmp-")]
    for p in _entries(d):
        assert pc._read(p) is not None, f"corrupt cache entry left: {p}"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("LAZYGRAD_CACHE_DIR", str(d))
    monkeypatch.delenv("LAZYGRAD_CACHE", raising=False)
    return d


def _fresh_kernel() -> tuple[str, str, float]:
    name = f"lg_cache_{uuid.uuid4().hex[:10]}"
    scale = float(np.random.default_rng().integers(2, 50))
    return name, _kernel_source(name, scale), scale


def _garbage_envelope(path: Path) -> None:
    # right magic, right key, matching checksum, but the payload is not a program binary
    payload = os.urandom(512)
    import hashlib
    path.write_bytes(rt._MAGIC + path.stem.encode() + hashlib.sha256(payload).digest() + payload)


CORRUPTIONS = {
    "truncated": lambda p, other: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "empty": lambda p, other: p.write_bytes(b""),
    "garbage": lambda p, other: p.write_bytes(os.urandom(3000)),
    "bit_flip": lambda p, other: p.write_bytes(p.read_bytes()[:-10] + bytes([p.read_bytes()[-10] ^ 1]) + p.read_bytes()[-9:]),
    "garbage_binary_valid_envelope": lambda p, other: _garbage_envelope(p),
    "entry_of_another_kernel": lambda p, other: p.write_bytes(other.read_bytes()),
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupt_entry_is_rebuilt_and_replaced(cache_dir: Path, how: str) -> None:
    name, src, scale = _fresh_kernel()
    other_name, other_src, other_scale = _fresh_kernel()
    _run(rt.ProgramCache(lg.device()), name, src, scale)             # compile + write entry
    _run(rt.ProgramCache(lg.device()), other_name, other_src, other_scale)
    pc = rt.ProgramCache(lg.device())
    key_path = cache_dir / f"{pc.key(src, rt.BUILD_OPTIONS)}.bin"
    other_path = cache_dir / f"{pc.key(other_src, rt.BUILD_OPTIONS)}.bin"
    assert key_path.is_file() and other_path.is_file()
    CORRUPTIONS[how](key_path, other_path)

    compiled = counters.programs_compiled
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                 # a bad entry is no reason to warn
        _run(rt.ProgramCache(lg.device()), name, src, scale)
    assert counters.programs_compiled == compiled + 1                  # rebuilt from source
    _assert_clean(cache_dir)                                           # and the entry was replaced

    hits = counters.disk_cache_hits
    _run(rt.ProgramCache(lg.device()), name, src, scale)
    assert counters.disk_cache_hits == hits + 1 and counters.programs_compiled == compiled + 1


def test_entry_replaced_by_a_directory(cache_dir: Path) -> None:
    name, src, scale = _fresh_kernel()
    pc = rt.ProgramCache(lg.device())
    (cache_dir / f"{pc.key(src, rt.BUILD_OPTIONS)}.bin").mkdir(parents=True)
    with pytest.warns(RuntimeWarning, match="program disk cache disabled") as rec:
        _run(pc, name, src, scale)
        name2, src2, scale2 = _fresh_kernel()
        _run(pc, name2, src2, scale2)                                  # memory-only from now on: no second warning
    assert len(rec) == 1


def test_cache_dir_under_a_file_warns_once_and_uses_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    monkeypatch.setenv("LAZYGRAD_CACHE_DIR", str(blocker / "lazygrad"))  # cannot be created, even as root
    pc = rt.ProgramCache(lg.device())
    kernels = [_fresh_kernel() for _ in range(3)]
    with pytest.warns(RuntimeWarning) as rec:
        for name, src, scale in kernels:
            _run(pc, name, src, scale)
    msgs = [str(w.message) for w in rec if issubclass(w.category, RuntimeWarning)]
    assert len(msgs) == 1 and "in-memory cache only" in msgs[0] and str(blocker) in msgs[0]
    hits, compiled = counters.cache_hits, counters.programs_compiled
    for name, src, scale in kernels:                                   # memory cache still serves them
        _run(pc, name, src, scale)
    assert counters.cache_hits == hits + 3 and counters.programs_compiled == compiled


def test_readonly_cache_dir_keeps_reading_entries(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries written earlier are still used when new ones cannot be written (tests run as
    root, where chmod does not stop writes: the refusal is simulated at mkstemp)."""
    name, src, scale = _fresh_kernel()
    _run(rt.ProgramCache(lg.device()), name, src, scale)
    before = sorted(p.name for p in cache_dir.iterdir())

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("tempfile.mkstemp", refuse)
    pc = rt.ProgramCache(lg.device())
    hits = counters.disk_cache_hits
    _run(pc, name, src, scale)
    assert counters.disk_cache_hits == hits + 1                        # read from the read-only dir
    name2, src2, scale2 = _fresh_kernel()
    with pytest.warns(RuntimeWarning, match="Permission denied"):
        _run(pc, name2, src2, scale2)
    assert sorted(p.name for p in cache_dir.iterdir()) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_chmod_readonly_cache_dir(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True)
    cache_dir.chmod(0o555)
    try:
        name, src, scale = _fresh_kernel()
        with pytest.warns(RuntimeWarning, match="in-memory cache only"):
            _run(rt.ProgramCache(lg.device()), name, src, scale)
    finally:
        cache_dir.chmod(0o755)


def test_failed_write_leaves_no_stray_file(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("os.replace", disk_full)
    name, src, scale = _fresh_kernel()
    with pytest.warns(RuntimeWarning, match="No space left"):
        _run(rt.ProgramCache(lg.device()), name, src, scale)
    assert list(cache_dir.iterdir()) == []


def test_cache_disabled_writes_nothing(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAZYGRAD_CACHE", "0")
    name, src, scale = _fresh_kernel()
    _run(rt.ProgramCache(lg.device()), name, src, scale)
    assert not cache_dir.exists()


# --- two processes compiling the same kernels at once --------------------------------------------
_WORKER = r"""
import json, sys, warnings
import numpy as np
warnings.simplefilter("always")
import lazygrad as lg
x = lg.Tensor(np.arange(48, dtype=np.float32).reshape(6, 8) / 7)
outs = [((x * 0.5 + 1).exp()).sum(1), (x.flip(1) - 3).relu() * x, x.amax(0) + x.sum(0),
        (x.T @ x).sqrt(), x.softmax(1)]
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    lg.realize(*outs)
    vals = [o.numpy().tolist() for o in outs]
print(json.dumps({"vals": vals, "compiled": lg.counters.programs_compiled,
                  "disk_hits": lg.counters.disk_cache_hits, "warnings": [str(m.message) for m in w]}))
"""


def _expected() -> list[np.ndarray]:
    x = np.arange(48, dtype=np.float64).reshape(6, 8) / 7
    e = np.exp(x - x.max(1, keepdims=True))
    return [np.exp(x * 0.5 + 1).sum(1), np.maximum(x[:, ::-1] - 3, 0) * x, x.max(0) + x.sum(0),
            np.sqrt(x.T @ x), e / e.sum(1, keepdims=True)]


def _spawn(cache: Path) -> subprocess.Popen:
    env = dict(os.environ, LAZYGRAD_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    env.pop("LAZYGRAD_CACHE", None)
    return subprocess.Popen([sys.executable, "-c", _WORKER], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(p: subprocess.Popen, warnings_expected: int = 0) -> dict:
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    res = json.loads(out.strip().splitlines()[-1])
    for got, want in zip(res["vals"], _expected()):
        np.testing.assert_allclose(np.array(got), want, rtol=1e-4, atol=1e-5)
    assert len(res["warnings"]) == warnings_expected, res["warnings"]
    return res


def test_unwritable_cache_dir_in_a_real_run(tmp_path: Path) -> None:
    """A whole program run with a cache directory that cannot exist: one warning, right values."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = _result(_spawn(blocker / "cache"), warnings_expected=1)
    assert "in-memory cache only" in res["warnings"][0] and res["compiled"] >= 1


def test_two_processes_compiling_the_same_kernels(tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    procs = [_spawn(cache), _spawn(cache)]                            # started together: they race
    results = [_result(p) for p in procs]
    _assert_clean(cache)
    n_entries = len(_entries(cache))
    assert n_entries >= 1                                              # one per distinct program (a plan's kernels build as one)
    assert all(r["compiled"] + r["disk_hits"] == n_entries for r in results)
    third = _result(_spawn(cache))                                     # everything now comes from disk
    assert third["compiled"] == 0 and third["disk_hits"] == n_entries
