"""What machine and software a result was measured on.

Versions are read from package metadata, so collecting them does not import torch or
tinygrad. The OpenCL device is queried through pyopencl.

Public names: machine_info, CpuMeter.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("numpy", "torch", "tinygrad", "pyopencl", "pocl-binary-distribution", "lazygrad",
            "matplotlib")
ENV_VARS = ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "LAZYGRAD_DEVICE", "LAZYGRAD_FUSE", "LAZYGRAD_TARGET", "POCL_MAX_PTHREAD_COUNT")


class CpuMeter:
    """How much CPU *other* processes used while the benchmarks ran.

    Whole-machine busy time from /proc/stat minus this process's and its (waited-for)
    children's CPU time. On a shared 2-core machine this says whether numbers are noisy.
    """

    def __init__(self) -> None:
        self._t0, self._busy0, self._own0 = time.monotonic(), self._busy(), self._own()

    @staticmethod
    def _busy() -> float:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return 0.0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def report(self) -> dict[str, float]:
        wall = time.monotonic() - self._t0
        others = max(0.0, (self._busy() - self._busy0) - (self._own() - self._own0))
        cores = os.cpu_count() or 1
        return {"wall_s": wall, "other_cpu_s": others,
                "other_load_fraction": others / (wall * cores) if wall > 0 else 0.0}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        if name == "lazygrad":  # not installed, but importable from the repo
            try:
                import lazygrad
                return str(getattr(lazygrad, "__version__", "?")) + " (source tree)"
            except Exception:
                return None
        return None


def _git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except Exception:
        return None


def _opencl_device() -> dict[str, str]:
    try:
        from bench.contenders.opencl_impl import device_info
        return device_info()
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}


def _lazygrad_target() -> str:
    """The target lazygrad generates code for here (LLVM CPU, vector bits, probed widths)."""
    try:
        from lazygrad.runtime.device import current_target
        return current_target().describe()
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def machine_info() -> dict[str, Any]:
    """CPU, memory, OpenCL device, package versions, date and relevant environment."""
    repo = Path(__file__).resolve().parents[1]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _mem_total_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "opencl_device": _opencl_device(),
        "lazygrad_target": _lazygrad_target(),
        "versions": {name: _package_version(name) for name in PACKAGES},
        "lazygrad_commit": _git_commit(repo),
        "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
    }
