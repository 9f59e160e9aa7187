"""The process group: who this process is (rank, world size, local rank), MPI's communicator,
and the failure rules every collective obeys.

`init()` is idempotent. Under an MPI launcher (mpirun / mpiexec / srun: the launcher's
variables are set) it imports mpi4py, which initializes MPI; a plain `python train.py` is a
world of one and never imports mpi4py, so nothing costs anything without MPI. Before the OpenCL
platform exists it gives each rank its share of the host's cores (PoCL's
`POCL_MAX_PTHREAD_COUNT`, read once when PoCL starts; the name is the one PoCL 3.0's
libpocl reads) and, when `LAZYGRAD_DEVICE` is a comma-separated list, the entry of its local
rank, so the ranks on one host do not fight for the same cores or device.

A rank that raises prints its traceback and aborts the whole job (MPI_Abort), so the others
never hang in a collective waiting for it; every wait in this package also gives up after
`LAZYGRAD_DIST_TIMEOUT` seconds with DistributedTimeout (which aborts the job the same way).

Public names: World, DistributedTimeout, init, world, is_initialized, barrier, wait_all,
mpiexec_path.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lazygrad.runtime import device as runtime
from lazygrad.config import settings

# variables a launcher sets in every process it starts (MPICH/Hydra and Intel MPI: PMI_*;
# Open MPI: OMPI_*; PMIx launchers including Slurm's srun --mpi=pmix: PMIX_*; srun --mpi=pmi2: PMI_*)
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
# PoCL 3.0's CPU device reads its thread count from this variable (libpocl's strings; PoCL 4
# renamed it POCL_CPU_MAX_CU_COUNT, so both are set)
_POCL_THREADS = ("POCL_MAX_PTHREAD_COUNT", "POCL_CPU_MAX_CU_COUNT")


class DistributedTimeout(RuntimeError):
    """A collective did not complete within LAZYGRAD_DIST_TIMEOUT seconds (another rank is
    stuck or gone); the job is aborted."""


@dataclass(frozen=True)
class World:
    """This process's place in the job: `rank` of `size`, `local_rank` of `local_size` on its
    host, the thread count its PoCL device was given, and the mpi4py communicator (None in a
    world of one started without a launcher)."""

    rank: int
    size: int
    local_rank: int
    local_size: int
    threads: int | None
    comm: Any = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that writes checkpoints and prints."""
        return self.rank == 0


# the process's one group, like the runtime's one device: made once by init()
_world: World | None = None


def _launched() -> bool:
    return any(v in os.environ for v in _LAUNCHER_VARS)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _opencl_started() -> bool:
    return runtime._device is not None


def _place_on_host(local_rank: int, local_size: int) -> int | None:
    """Give this rank its share of the host's cores and its device (before PoCL starts)."""
    threads = None
    if local_size > 1:
        threads = max(1, _cores() // local_size)
        if not _opencl_started():
            for var in _POCL_THREADS:
                os.environ.setdefault(var, str(threads))
            threads = int(os.environ[_POCL_THREADS[0]])
        else:
            warnings.warn("lazygrad.distributed.init() ran after the OpenCL device was created: PoCL keeps its "
                          f"thread count, and the {local_size} ranks on this host share its cores; call init() "
                          "before the first tensor", RuntimeWarning, stacklevel=3)
            threads = None
    devices = settings().device
    if "," in devices:
        choices = [d.strip() for d in devices.split(",") if d.strip()]
        os.environ["LAZYGRAD_DEVICE"] = choices[local_rank % len(choices)]
    return threads


def _abort_on_exception(comm: Any) -> None:
    """Make an uncaught exception on any rank end the whole job instead of leaving the others
    blocked in their next collective."""
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        sys.stderr.write(f"lazygrad.distributed: rank {comm.Get_rank()} of {comm.Get_size()} raised "
                         f"{kind.__name__}; aborting all ranks\n")
        try:
            traceback.print_exception(kind, value, tb)
        except Exception:  # a broken traceback must not keep the job alive
            previous(kind, value, tb)
        sys.stderr.flush()
        sys.stdout.flush()
        # the launcher forwards each rank's output through its own proxy, and Abort kills the
        # proxies too: without a moment to forward it, the message above was lost under load
        # (a CI run saw only the line printed before it); half a second is short against a job
        time.sleep(0.5)
        comm.Abort(1)

    sys.excepthook = hook


def init() -> World:
    """Join the job (once per process) and return this process's World. Without a launcher:
    rank 0 of a world of one, and mpi4py is not imported."""
    global _world
    if _world is not None:
        return _world
    if not _launched():
        _world = World(0, 1, 0, 1, None, None)
        return _world
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError("lazygrad.distributed: started by an MPI launcher but mpi4py is not installed; "
                           'pip install "lazygrad[distributed]"') from None
    comm = MPI.COMM_WORLD
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    threads = _place_on_host(local.Get_rank(), local.Get_size())
    _abort_on_exception(comm)
    _world = World(comm.Get_rank(), comm.Get_size(), local.Get_rank(), local.Get_size(), threads, comm)
    local.Free()
    return _world


def world() -> World:
    """The World of this process (init() if not done yet)."""
    return _world if _world is not None else init()


def is_initialized() -> bool:
    """Whether init() has run in this process."""
    return _world is not None


def wait_all(requests: list, what: str) -> None:
    """Wait for non-blocking MPI requests, polling (which also drives MPI's progress) and
    giving up after LAZYGRAD_DIST_TIMEOUT seconds with DistributedTimeout."""
    if not requests:
        return
    from mpi4py import MPI
    timeout = settings().dist_timeout
    deadline = time.monotonic() + timeout
    while not MPI.Request.Testall(requests):
        if time.monotonic() > deadline:
            w = world()
            raise DistributedTimeout(f"lazygrad.distributed: rank {w.rank} of {w.size}: {what} did not complete "
                                     f"within {timeout:g} s (LAZYGRAD_DIST_TIMEOUT); another rank is stuck or gone")
        # 50 us: short against a step, long enough not to take a core from a rank that computes
        time.sleep(5e-5)


def barrier() -> None:
    """Wait until every rank reaches this point (nothing in a world of one)."""
    w = world()
    if w.comm is not None and w.size > 1:
        wait_all([w.comm.Ibarrier()], "barrier")


def mpiexec_path() -> str | None:
    """The `mpiexec` to launch jobs with: the one on PATH, else the one the `mpich` wheel puts
    next to this Python (its bin directory is not on PATH in every environment)."""
    found = shutil.which("mpiexec")
    if found:
        return found
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else None
