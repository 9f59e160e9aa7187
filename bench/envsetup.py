"""Environments for worker and probe subprocesses.

tinygrad on PoCL: tinygrad loads libOpenCL itself with ctypes, but the only OpenCL loader
here is the ocl-icd bundled inside pyopencl's wheel (``pyopencl/.libs``), next to the PoCL
ICD (``pocl.icd`` naming ``libpocl-<hash>.so``). Four variables make that work, and they
must be set before the process starts (the dynamic loader reads LD_LIBRARY_PATH once):

- ``DEV=CL``: tinygrad's OpenCL backend;
- ``OPENCL_PATH=<pyopencl>/.libs/libOpenCL-<hash>.so.1.0.0``: tinygrad's library lookup
  only matches ``libOpenCL.so*`` names, so give it the file;
- ``PYOPENCL_HOME=<pyopencl>``: pyopencl's patched ocl-icd reads its vendor (.icd) folder
  from this variable and crashes in clGetPlatformIDs when it is unset (pyopencl sets it on
  import, tinygrad does not);
- ``LD_LIBRARY_PATH=<pyopencl>/.libs``: so the loader can dlopen ``libpocl-<hash>.so``.

Public names: pyopencl_libs, tinygrad_env, lazygrad_unfused_env, isolated_cache_env.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def pyopencl_libs() -> tuple[Path, Path | None]:
    """(pyopencl package dir, bundled libOpenCL file or None)."""
    spec = importlib.util.find_spec("pyopencl")
    if spec is None or spec.origin is None:
        raise RuntimeError("pyopencl is not installed")
    home = Path(spec.origin).parent
    libs = sorted((home / ".libs").glob("libOpenCL*.so*"))
    return home, (libs[0] if libs else None)


def tinygrad_env() -> dict[str, str]:
    """Variables that put tinygrad on the PoCL device through pyopencl's bundled loader."""
    env = {"DEV": "CL"}
    try:
        home, libopencl = pyopencl_libs()
    except RuntimeError:
        return env  # a system OpenCL loader, if any, will be used
    env["PYOPENCL_HOME"] = str(home)
    if libopencl is not None:
        env["OPENCL_PATH"] = str(libopencl)
        old = os.environ.get("LD_LIBRARY_PATH", "")
        env["LD_LIBRARY_PATH"] = str(libopencl.parent) + (os.pathsep + old if old else "")
    return env


def lazygrad_unfused_env() -> dict[str, str]:
    """One kernel per primitive."""
    return {"LAZYGRAD_FUSE": "0"}


def isolated_cache_env(cache_root: Path) -> dict[str, str]:
    """Point every on-disk compile cache we know of into `cache_root` (for cold starts)."""
    return {
        "XDG_CACHE_HOME": str(cache_root),               # pyopencl, tinygrad, lazygrad defaults
        "LAZYGRAD_CACHE_DIR": str(cache_root / "lazygrad"),
        "POCL_CACHE_DIR": str(cache_root / "pocl"),       # PoCL's own kernel cache
        "CACHEDB": str(cache_root / "tinygrad.db"),       # tinygrad's compile cache
        "TORCHINDUCTOR_CACHE_DIR": str(cache_root / "inductor"),
    }
