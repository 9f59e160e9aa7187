"""The OpenCL runtime: device, buffers with a reuse pool, program cache, kernel launch.

This module and `counters` hold the only process-wide state of lazygrad.

Public names: Device, Buffer, get_device, compile_program, launch, synchronize,
ProgramCache, BuildError, memory_stats.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from lazygrad.version import __version__
from lazygrad.config import Settings, settings
from lazygrad.counters import counters
from lazygrad.dtypes import DType
from lazygrad.runtime.lru import LRUCache
from lazygrad.runtime.faults import check_faults, missing_kernels, refusal
from lazygrad.runtime.probe import ProbeReport, probe_items, run_probe
from lazygrad.codehash import code_hash
from lazygrad.target import DeviceInfo, Target, describe, planned_bits

_MAGIC = b"LGBIN2\n"  # cache entry format; a new one makes old entries unreadable (rebuilt)


def _program_key(source: str, options: str, caps: DeviceCaps) -> str:
    h = hashlib.sha256()
    for part in (code_hash(source), options, caps.name, caps.driver, caps.platform, __version__):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def combine_sources(sources: list[str]) -> str:
    """One program from several kernels' sources (building one program of N kernels costs
    about as much as building one: PoCL's per-program overhead dominates). Extension pragmas
    and typedefs are hoisted and de-duplicated; kernel names are already unique."""
    header: list[str] = []
    bodies: list[str] = []
    for src in sources:
        lines = []
        for line in src.splitlines():
            if line.startswith("#pragma OPENCL EXTENSION") or line.startswith("typedef "):
                if line not in header:
                    header.append(line)
            else:
                lines.append(line)
        bodies.append("\n".join(lines))
    return "\n".join(header) + "\n" + "\n\n".join(bodies) + "\n"


class BuildError(RuntimeError):
    """An OpenCL program failed to build; carries the kernel name, build log and source path."""


def _pick_device():
    """(platform, device, platform index, device index) of the device to use."""
    import pyopencl as cl

    want = settings().device
    candidates = []
    for pi, p in enumerate(cl.get_platforms()):
        for di, d in enumerate(p.get_devices()):
            candidates.append((p, d, pi, di))
    if not candidates:
        raise RuntimeError("lazygrad: no OpenCL device found (is pocl-binary-distribution installed?)")
    if want:
        # "N" picks the N-th device; otherwise a substring of platform or device name
        if want.isdigit() and int(want) < len(candidates):
            return candidates[int(want)]
        for c in candidates:
            if want in c[0].name.lower() or want in c[1].name.lower():
                return c
        names = ", ".join(f"{p.name}/{d.name}" for p, d, _, _ in candidates)
        raise RuntimeError(f"LAZYGRAD_DEVICE={want!r} matches no OpenCL device; have: {names}")
    for c in candidates:  # PoCL first: it is the device installed with the package
        if "portable computing language" in c[0].name.lower() or "pocl" in c[0].name.lower():
            return c
    return candidates[0]


class Device:
    """An OpenCL context and in-order queue on one device, with its capabilities."""

    def __init__(self) -> None:
        import pyopencl as cl

        self.cl = cl
        platform, dev, self.platform_index, self.device_index = _pick_device()
        self.device = dev
        self.ctx = cl.Context([dev])
        # two in-order queues: profiling makes every queued launch cost ~100 us on PoCL, so it
        # is used only while kernels are timed; switching waits for the other queue to drain
        self.plain_queue = cl.CommandQueue(self.ctx, dev)
        self.timed_queue: object | None = None
        self.queue = self.plain_queue
        self.timing = False
        ext = dev.extensions
        self.caps = DeviceInfo(
            name=dev.name, version=dev.version, driver=dev.driver_version, platform=platform.version,
            is_cpu=bool(dev.type & cl.device_type.CPU), compute_units=dev.max_compute_units,
            max_work_group_size=dev.max_work_group_size, local_mem_size=dev.local_mem_size,
            max_alloc=dev.max_mem_alloc_size, global_mem=dev.global_mem_size,
            max_param_size=dev.max_parameter_size,
            reported_float_lanes=max(1, dev.preferred_vector_width_float),
            fp16="cl_khr_fp16" in ext, fp64="cl_khr_fp64" in ext or "cl_amd_fp64" in ext,
            int64=dev.profile == "FULL_PROFILE" or "cles_khr_int64" in ext)
        self.pool = BufferPool(self)
        self.programs = ProgramCache(self)
        self.pending_events: list = []
        self._targets: dict[tuple, Target] = {}
        self.probe_reports: dict[tuple, ProbeReport] = {}

    def target(self, s: Settings | None = None) -> Target:
        """The target under settings `s` (forced width, probe on/off, faults), made once per
        distinct setting: the probe runs (or its verdict is read from disk) the first time."""
        s = s or settings()
        key = (s.target, s.probe, s.fault)
        t = self._targets.get(key)
        if t is None:
            check_faults(s.fault)
            _, bits, _ = planned_bits(self.caps, s.target)
            verified = None
            if s.probe:
                items = probe_items(bits, self.caps.fp64)
                report = run_probe(self.caps, self.platform_index, self.device_index, items, s.fault,
                                   s.resolved_cache_dir if s.cache else None)
                self.probe_reports[key] = report
                # a forced width is wanted even where it is wider than the registers (the
                # ABI warning): it runs the wide code paths on any CPU, values still checked
                verified = report.verified(items, allow_abi=s.target != "auto")
                if items and not verified:
                    warnings.warn(f"lazygrad: the device probe passed no vector width on {self.caps.name} "
                                  f"({next(iter(report.verdicts.values()), '')}); generating scalar code. "
                                  "LAZYGRAD_PROBE=0 trusts the device description instead.", RuntimeWarning,
                                  stacklevel=2)
            t = self._targets[key] = describe(self.caps, s.target, verified)
        return t

    def set_timing(self, on: bool) -> None:
        """Route the following commands to the profiling queue (on) or the plain one."""
        if on == self.timing:
            return
        self.queue.finish()
        if on and self.timed_queue is None:
            self.timed_queue = self.cl.CommandQueue(self.ctx, self.device,
                                                    properties=self.cl.command_queue_properties.PROFILING_ENABLE)
        self.queue = self.timed_queue if on else self.plain_queue
        self.timing = on

    def supports(self, dtype: DType) -> bool:
        return {"float16": self.caps.fp16, "float64": self.caps.fp64, "int64": self.caps.int64}.get(dtype.name, True)


_device: Device | None = None


def get_device() -> Device:
    global _device
    if _device is None:
        _device = Device()
    return _device


_capped: ContextVar[int] = ContextVar("lazygrad_width_cap", default=0)


def current_target() -> Target:
    """The target code is generated for here: the device's under the current settings, with
    the run-time fallback's width cap (`narrower`) applied."""
    t = get_device().target()
    cap = _capped.get()
    return t.capped(cap) if cap else t


@contextmanager
def narrower(bits: int) -> Iterator[None]:
    """Generate code with no vector wider than `bits` inside the block."""
    token = _capped.set(bits)
    try:
        yield
    finally:
        _capped.reset(token)


# --- buffers ---------------------------------------------------------------------------------
class BufferPool:
    """Freed device buffers kept by size for reuse: a fresh allocation costs more than a
    memory-bound kernel on this device.

    Exact mode (LAZYGRAD_EXACT_BUFFERS=1, and always on the Oclgrind simulator) is for memory
    checkers: every buffer is allocated at its exact size and never reused, so each
    out-of-bounds access and each read of memory that no kernel or copy wrote is visible; and
    freed buffers are kept (a quarantine, like AddressSanitizer's) instead of handed back,
    because Oclgrind 21.10 reports false "uninitialized" reads in kernels that run after a
    buffer's memory was released and reallocated. Memory grows: debugging only."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.free: dict[int, list] = defaultdict(list)
        self.pooled_bytes = 0
        s = settings()
        self.exact = s.exact_buffers or "oclgrind" in device.caps.name.lower()
        self.limit = 0 if self.exact else (s.pool_bytes if s.pool_bytes >= 0 else (
            min(4 << 30, device.caps.global_mem // 4)))
        self.live_buffers = 0   # Buffers alive right now (in use by nodes or plans, not pooled)
        self.live_bytes = 0
        self.quarantine: list = []

    def bucket(self, nbytes: int) -> int:
        if self.exact:
            return max(1, nbytes)
        return max(128, (nbytes + 127) // 128 * 128)

    def alloc(self, nbytes: int):
        size = self.bucket(nbytes)
        lst = self.free.get(size)
        if lst:
            counters.buffers_reused += 1
            self.pooled_bytes -= size
            return lst.pop()
        cl = self.device.cl
        if nbytes > self.device.caps.max_alloc:
            raise MemoryError(f"lazygrad: cannot allocate {nbytes} bytes on {self.device.caps.name}: "
                              f"larger than the device's max allocation ({self.device.caps.max_alloc} bytes)")
        for attempt in range(2):
            try:
                buf = cl.Buffer(self.device.ctx, cl.mem_flags.READ_WRITE, size)
                counters.buffers_allocated += 1
                return buf
            except (cl.MemoryError, cl.RuntimeError, cl.LogicError) as e:
                if attempt == 0:
                    self.clear()  # give pooled memory back and try once more
                    continue
                raise MemoryError(f"lazygrad: device out of memory allocating {nbytes} bytes "
                                  f"on {self.device.caps.name}: {e}") from None
        raise AssertionError("unreachable")

    def release(self, clbuf, nbytes: int) -> None:
        if self.exact:
            self.quarantine.append(clbuf)
            return
        size = self.bucket(nbytes)
        if self.pooled_bytes + size > self.limit:
            return  # let it be freed
        self.free[size].append(clbuf)
        self.pooled_bytes += size

    def clear(self) -> None:
        self.free.clear()
        self.pooled_bytes = 0

    def stats(self) -> dict[str, int]:
        return {"live_buffers": self.live_buffers, "live_bytes": self.live_bytes,
                "pooled_buffers": sum(len(v) for v in self.free.values()), "pooled_bytes": self.pooled_bytes}


def memory_stats() -> dict[str, int]:
    """Device memory held by lazygrad: live Buffers (count and bytes) and what the pool keeps
    for reuse. Long runs use it to show that memory does not grow."""
    return get_device().pool.stats()


class Buffer:
    """Device memory for `size` elements of `dtype`. Returned to the pool when collected."""

    __slots__ = ("device", "cl_buf", "size", "dtype", "nbytes", "_write", "__weakref__")

    def __init__(self, size: int, dtype: DType, device: Device | None = None) -> None:
        self.device = device or get_device()
        self.size = size
        self.dtype = dtype
        self.nbytes = size * dtype.itemsize
        self.cl_buf = None
        self._write: list | None = None   # events of unfinished writes (they hold the host copies)
        if self.nbytes > 0:
            pool = self.device.pool
            self.cl_buf = pool.alloc(self.nbytes)
            pool.live_buffers += 1
            pool.live_bytes += self.nbytes

    def __del__(self) -> None:
        try:
            if self.cl_buf is not None:
                pool = self.device.pool
                pool.live_buffers -= 1
                pool.live_bytes -= self.nbytes
                pool.release(self.cl_buf, self.nbytes)
                self.cl_buf = None
        except Exception:  # interpreter shutdown
            pass

    def copyin(self, arr: np.ndarray) -> Buffer:
        if self.nbytes == 0:
            return self
        arr = np.ascontiguousarray(arr, dtype=self.dtype.np)
        assert arr.nbytes == self.nbytes, (arr.nbytes, self.nbytes)
        self.device.cl.enqueue_copy(self.device.queue, self.cl_buf, arr, is_blocking=True)
        counters.bytes_moved += self.nbytes
        return self

    def write(self, arr: np.ndarray) -> Buffer:
        """Overwrite the contents without waiting. The queue is in order, so kernels enqueued
        before read the old value and kernels enqueued after the new one, and the host is not
        blocked (copyin's blocking copy would wait for every queued kernel). Each write's event
        holds its host copy (dropping an unfinished one would wait for it), so the events are
        kept until they complete."""
        if self.nbytes == 0:
            return self
        host = np.array(arr, dtype=self.dtype.np, copy=True).reshape(-1)
        assert host.nbytes == self.nbytes, (host.nbytes, self.nbytes)
        done = self.device.cl.command_execution_status.COMPLETE
        pending = [e for e in (self._write or ()) if e.command_execution_status != done]
        pending.append(self.device.cl.enqueue_copy(self.device.queue, self.cl_buf, host, is_blocking=False))
        self._write = pending
        counters.bytes_moved += self.nbytes
        return self

    def numpy(self) -> np.ndarray:
        out = np.empty(self.size, dtype=self.dtype.np)
        if self.nbytes:
            self.device.cl.enqueue_copy(self.device.queue, out, self.cl_buf, is_blocking=True)
            collect_timings(self.device)
        return out

    @staticmethod
    def from_numpy(arr: np.ndarray, dtype: DType) -> Buffer:
        b = Buffer(int(arr.size), dtype)
        return b.copyin(arr)


# --- programs --------------------------------------------------------------------------------
def _cache_dir() -> Path:
    return Path(settings().resolved_cache_dir)


# -w: clang's warnings on generated code ("use of logical '&&' with constant operand" in the
# masks of a padded read) reached users as pyopencl CompilerWarnings on every first build;
# they are the generator's business (its tests read the sources), and errors still report
BUILD_OPTIONS = "-cl-std=CL1.2 -w"


@dataclass
class ProgramCache:
    """Built programs by source hash in memory, and as binaries on disk keyed by
    (source, options, device, driver, platform, lazygrad version)."""

    device: Device
    memory: LRUCache[str, object] = field(default_factory=lambda: LRUCache("program", lambda: settings().program_cache))
    disk_ok: bool = True           # False once the cache directory failed us (read-only, full)
    warned: bool = False

    @property
    def use_disk(self) -> bool:
        # the setting is read at each use, like every other one: `override(cache=False)`
        # applies to a device made before it (the probe's verdicts have their own cache)
        return self.disk_ok and settings().cache

    def key(self, source: str, options: str) -> str:
        return _program_key(source, options, self.device.caps)

    def _warn(self, msg: str) -> None:
        if not self.warned:
            warnings.warn(f"lazygrad: program disk cache disabled: {msg}", RuntimeWarning, stacklevel=3)
            self.warned = True
        self.disk_ok = False

    def _read(self, path: Path) -> bytes | None:
        """The binary stored under `path`, or None if it is missing, torn, garbage, or an entry
        for another key (copied or renamed files)."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        # envelope: magic, the entry's key, sha256 of the payload, payload
        head = len(_MAGIC) + 64 + 32
        if len(data) <= head or not data.startswith(_MAGIC):
            return None
        key, digest, payload = data[len(_MAGIC):len(_MAGIC) + 64], data[len(_MAGIC) + 64:head], data[head:]
        if key != path.stem.encode() or hashlib.sha256(payload).digest() != digest:
            return None
        return payload

    def _write(self, path: Path, binary: bytes) -> None:
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".bin")
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + path.stem.encode() + hashlib.sha256(binary).digest() + binary)
            os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
            tmp = None
        except OSError as e:
            self._warn(f"cannot write {path.parent} ({e.strerror or e}); using the in-memory cache only")
        finally:
            if tmp is not None:  # a failed write (disk full, rename refused) leaves no stray file
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def prefetch(self, kernels: list[tuple[str, str]], options: str = BUILD_OPTIONS) -> dict[str, str]:
        """Load or build, as ONE program, every (name, source) not in memory yet: building is
        most of a first training step's time, and a program of 30 kernels builds about as
        fast as one. Returns source -> "compiled" | "disk cache" for the ones it loaded; on a
        build error nothing is loaded (get() then names the failing kernel)."""
        todo: dict[str, str] = {}  # name -> source; names carry a hash of the code
        for name, src in kernels:
            if self.key(src, options) not in self.memory:
                todo.setdefault(name, src)
        if len(todo) < 2:
            return {}
        combined = combine_sources(list(todo.values()))
        before = counters.programs_compiled
        try:
            prg = self.get("+".join(todo), combined, options, count_hit=False, names=list(todo))
        except BuildError:
            return {}
        status = "compiled" if counters.programs_compiled > before else "disk cache"
        loaded = {}
        for name, src in kernels:
            if name in todo:
                self.memory.put(self.key(src, options), prg)
                loaded[src] = status
        return loaded

    def get(self, name: str, source: str, options: str = BUILD_OPTIONS, count_hit: bool = True,
            names: list[str] | None = None):
        """A built cl.Program for `source`, from memory, disk, or a fresh build. A program
        loaded from disk must contain kernel `name` (or every one of `names`)."""
        faults = settings().fault
        why = refusal(faults, source) if faults else None
        if why is not None:  # checked before the caches: the stand-in compiler refuses it always
            raise BuildError(f"lazygrad: OpenCL build of kernel {name!r} failed on {self.device.caps.name}; "
                             f"{_dump_failed(name, source)}\n--- build log ---\n{why}")
        key = self.key(source, options)
        prg = self.memory.get(key)
        if prg is not None:
            counters.cache_hits += count_hit
            return prg
        cl = self.device.cl
        path = _cache_dir() / f"{key}.bin"
        if self.use_disk:
            binary = self._read(path)
            if binary is not None:
                try:
                    prg = cl.Program(self.device.ctx, [self.device.device], [binary]).build(options)
                    have = prg.get_info(cl.program_info.KERNEL_NAMES).split(";")
                    if any(n not in have for n in (names or [name])):
                        raise ValueError(f"cache entry {path} lacks kernel {name}")
                    counters.cache_hits += 1
                    counters.disk_cache_hits += 1
                    self.memory.put(key, prg)
                    return prg
                except Exception:
                    prg = None  # unusable entry: rebuild and overwrite it
        t0 = time.perf_counter()
        built = _build_program(self.device, source, options)
        if isinstance(built, str):  # the build log of a failed build
            raise BuildError(f"lazygrad: OpenCL build of kernel {name!r} failed on {self.device.caps.name}; "
                             f"{_dump_failed(name, source)}\n--- build log ---\n{built}")
        prg = built
        counters.compile_time += time.perf_counter() - t0
        counters.programs_compiled += 1
        self.memory.put(key, prg)
        if self.use_disk:
            try:
                binary = prg.get_info(cl.program_info.BINARIES)[0]
                if binary:
                    self._write(path, bytes(binary))
            except cl.Error:
                pass
        return prg


def _build_program(dev: Device, source: str, options: str):
    """A built program, or the build log (a str) when the build fails. The failed program
    object is released here, before the error travels anywhere: PoCL aborts the interpreter
    at exit ("still have references to IRs") while a failed program is still referenced."""
    cl = dev.cl
    prg = cl._cl._Program(dev.ctx, source)
    try:
        prg.build(options.encode(), [dev.device])
        return prg
    except Exception as e:  # noqa: BLE001 - every driver failure becomes a BuildError
        try:
            log = prg.get_build_info(dev.device, cl.program_build_info.LOG)
        except Exception:  # noqa: BLE001
            log = ""
        msg = (log or "").strip() or str(e)
    del prg
    return msg


def _dump_failed(name: str, source: str) -> str:
    """Write a source that failed to build where the user can open it; say where (or why not).
    The file name carries the source hash, so processes failing on different sources do not
    overwrite each other's file."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:100] or "kernel"
    try:
        d = Path(tempfile.gettempdir()) / "lazygrad-failed"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{safe}-{digest}.cl"
        p.write_text(source)
        return f"source written to {p}"
    except OSError as e:  # never let the dump hide the build error itself
        return f"source could not be written ({e}); it begins:\n{source[:2000]}"


# --- launch ----------------------------------------------------------------------------------
def get_kernel(name: str, source: str, count_hit: bool = True):
    """The kernel `name` of the program built from `source` (BuildError if it does not build
    or has no kernel of that name)."""
    dev = get_device()
    prg = dev.programs.get(name, source, count_hit=count_hit)
    if name in missing_kernels(settings().fault, source):
        raise BuildError(f"lazygrad: program built but has no kernel {name!r} (fault injection: "
                         f"LAZYGRAD_FAULT=missing512); {_dump_failed(name, source)}")
    try:
        return dev.cl.Kernel(prg, name)
    except dev.cl.Error as e:
        raise BuildError(f"lazygrad: program built but has no kernel {name!r} ({e}); "
                         f"{_dump_failed(name, source)}") from None


def launch(kernel, global_size: tuple[int, ...], local_size: tuple[int, ...] | None,
           buffers: list[Buffer], timed: bool = False, scalars: tuple = ()):
    """Enqueue one kernel on `buffers` (then the scalar arguments); returns its event. A device
    that runs out of memory or resources only now (drivers may allocate lazily) raises
    MemoryError naming the kernel and the bytes it was given."""
    dev = get_device()
    cl = dev.cl
    kernel.set_args(*[b.cl_buf for b in buffers], *scalars)
    try:
        ev = cl.enqueue_nd_range_kernel(dev.queue, kernel, global_size, local_size)
    except cl.Error as e:
        if not (isinstance(e, cl.MemoryError) or getattr(e, "code", None) in _oom_codes(cl)):
            raise
        sizes = ", ".join(str(b.nbytes) for b in buffers)
        raise MemoryError(f"lazygrad: device {dev.caps.name} out of memory or resources launching kernel "
                          f"{kernel.function_name} (global size {global_size}, buffers of {sizes} bytes): {e}") from None
    counters.kernels_launched += 1
    if timed:
        dev.pending_events.append(ev)
    return ev


def _oom_codes(cl) -> tuple[int, ...]:
    sc = cl.status_code
    return (sc.MEM_OBJECT_ALLOCATION_FAILURE, sc.OUT_OF_RESOURCES, sc.OUT_OF_HOST_MEMORY)


def collect_timings(dev: Device | None = None) -> None:
    """Add device time of finished timed kernels to counters.kernel_time."""
    dev = dev or _device
    if dev is None or not dev.pending_events:
        return
    for ev in dev.pending_events:
        ev.wait()
        counters.kernel_time += (ev.profile.end - ev.profile.start) * 1e-9
    dev.pending_events.clear()


def synchronize() -> None:
    dev = get_device()
    dev.queue.finish()
    collect_timings(dev)
