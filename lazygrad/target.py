"""The target: what the device's compiler really produces code for, and every policy derived
from it, in one place.

PoCL reports the vector width of the CPU it runs on, but its LLVM may compile for an older CPU:
PoCL 3.0 with LLVM 14 on an AMD Zen 4 names `znver3` in its version string (no AVX-512) while
reporting `preferred_vector_width_float = 16`. 512-bit vectors then fail to build, vanish from
the program, kill the process inside LLVM, or compute garbage. So the register width is taken
from the LLVM CPU the compiler names (`LLVM_CPU_BITS`), never from the reported width alone,
and the probe (`lazygrad.runtime.probe`) checks every width before any kernel uses it.

Every width decision asks `Target.lanes(itemsize)`: vector bits / element bits, limited to
widths the probe passed. Nothing else reads the raw preferred width.

Public names: DeviceInfo, Target, Profile, describe, LLVM_CPU_BITS, VECTOR_SIZES,
vector_bits_of_source.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum

VECTOR_SIZES = (2, 4, 8, 16)   # OpenCL vector lengths lazygrad emits (3 is never used)

# LLVM CPU name (PoCL's "HSTR: pthread-<triple>-<cpu>") -> widest vector register in bits.
# LLVM 14 names; a CPU it does not know (Zen 4 on LLVM 14) is compiled for as an older one,
# and that older one is what PoCL prints, so this table tells what the code really gets.
_X86_512 = ("knl knm skylake-avx512 skx cascadelake cooperlake cannonlake icelake-client "
            "icelake-server tigerlake sapphirerapids rocketlake x86-64-v4 znver4 znver5 "
            "graniterapids emeraldrapids").split()
_X86_256 = ("haswell broadwell skylake alderlake raptorlake meteorlake gracemont znver1 znver2 "
            "znver3 bdver1 bdver2 bdver3 bdver4 btver2 sandybridge ivybridge corei7-avx "
            "core-avx-i core-avx2 x86-64-v3 sierraforest grandridge arrowlake lunarlake").split()
_X86_128 = ("x86-64 x86-64-v2 nehalem westmere core2 penryn atom bonnell silvermont slm goldmont "
            "goldmont-plus tremont btver1 amdfam10 barcelona k8 opteron athlon64").split()
LLVM_CPU_BITS: dict[str, int] = {**{c: 512 for c in _X86_512}, **{c: 256 for c in _X86_256},
                                 **{c: 128 for c in _X86_128}}

class Profile(Enum):
    """Which family of code paths the target takes."""

    CPU = "cpu"   # wide vectors per work-item, few work-items per row, small work-groups
    GPU = "gpu"   # narrow vectors, work-groups share a row, large work-groups


@dataclass(frozen=True)
class DeviceInfo:
    """What OpenCL says about a device, queried once (never assumed)."""

    name: str
    version: str          # device version string (PoCL puts the LLVM CPU there)
    driver: str
    platform: str
    is_cpu: bool
    compute_units: int
    max_work_group_size: int
    local_mem_size: int
    max_alloc: int
    global_mem: int
    max_param_size: int
    reported_float_lanes: int   # preferred_vector_width_float, only a hint (see module doc)
    fp16: bool
    fp64: bool
    # 64-bit integers (long): mandatory in OpenCL's full profile, an extension (cles_khr_int64)
    # in the embedded one; index results (argmax, sort, nonzero, ...) are int64 like torch's
    int64: bool = True

    @property
    def is_pocl(self) -> bool:
        return "pocl" in self.platform.lower() or "portable computing language" in self.platform.lower()

    @property
    def llvm_cpu(self) -> str | None:
        """The CPU PoCL's LLVM compiles for, from 'HSTR: pthread-x86_64-unknown-linux-gnu-znver3'."""
        m = re.search(r"HSTR:\s*(\S+)", self.version)
        if not m:
            return None
        parts = m.group(1).split("-")
        # pthread-x86_64-unknown-linux-gnu-<cpu>; the cpu may itself hold dashes (skylake-avx512)
        if "gnu" in parts:
            cpu = "-".join(parts[parts.index("gnu") + 1:])
            return cpu or None
        return parts[-1] or None


@dataclass(frozen=True)
class Target:
    """The device as code generation sees it. `verified` holds the (element bytes, lanes) the
    probe passed for every type of that size; None means not probed (LAZYGRAD_PROBE=0)."""

    info: DeviceInfo
    profile: Profile
    vector_bits: int                          # widest register the compiler targets
    bits_reason: str                          # where vector_bits came from, for the dump
    verified: frozenset[tuple[int, int]] | None
    cap_bits: int = 0                         # run-time fallback: no vector wider than this

    # --- identity ---------------------------------------------------------------------------
    def key(self) -> tuple:
        """Everything here that changes generated code or the graph passes' decisions (plan
        and program cache keys): the compute units decide `split_reduce`."""
        return (self.profile.value, self.vector_bits, self.cap_bits,
                tuple(sorted(self.verified)) if self.verified is not None else None, self.info.compute_units)

    @property
    def is_cpu(self) -> bool:
        return self.profile is Profile.CPU

    def capped(self, bits: int) -> Target:
        """This target with no vector wider than `bits` (a kernel that failed to build)."""
        return replace(self, cap_bits=bits)

    # --- widths -----------------------------------------------------------------------------
    @property
    def usable_bits(self) -> int:
        return min(self.vector_bits, self.cap_bits) if self.cap_bits else self.vector_bits

    def lanes(self, itemsize: int) -> int:
        """Widest vector length for elements of `itemsize` bytes: fits the register, was
        verified by the probe for every type of that size, and is an OpenCL vector size."""
        best = 1
        for w in VECTOR_SIZES:
            if w * itemsize * 8 > self.usable_bits:
                break
            if self.verified is None or (itemsize, w) in self.verified:
                best = w
        return best

    def loop_lanes(self, itemsize: int) -> int:
        """Lanes per work-item of elementwise kernels and row loops. On GPUs 4 at most (the
        work-items are the parallelism there)."""
        w = self.lanes(itemsize)
        return w if self.is_cpu else min(w, 4)

    def matmul_lanes(self, itemsize: int) -> int:
        """Lanes of the matmul's and conv's vectors: one register; 4 at most on GPUs."""
        return self.loop_lanes(itemsize)

    def matmul_panel_rows(self) -> int:
        """Rows per packed A panel (the kernel's mr when A is packed)."""
        return 8 if self.is_cpu else 4

    def wide_vector_attr(self, vec_bits: int) -> str:
        """Kernel attribute for accumulators wider than 256 bits on PoCL: its clang legalises
        512-bit vectors as pairs of 256-bit ones unless told otherwise (twice the instructions
        and spilled accumulators). Only where the target really has such registers."""
        vec_bits = min(512, vec_bits)
        if self.info.is_pocl and 256 < vec_bits <= self.usable_bits:
            return f"__attribute__((min_vector_width({vec_bits}))) "
        return ""

    # --- parallel layout ----------------------------------------------------------------------
    def reduce_rows_enough(self, n_out: int) -> bool:
        """Rows alone fill the device (else a work-group shares each row)."""
        return n_out >= 8 * self.info.compute_units * (1 if self.is_cpu else 32)

    def reduce_group_cap(self) -> int:
        return min(self.info.max_work_group_size, 16 if self.is_cpu else 256)

    def row_local(self) -> int:
        """Work-group size cap for one-row-per-work-item kernels."""
        return min(self.info.max_work_group_size, 16 if self.is_cpu else 64)

    def total_group_cap(self) -> int:
        """Work-group size of the one-group total of per-row values."""
        return min(self.info.max_work_group_size, 64 if self.is_cpu else 256)

    def split_reduce(self, n_out: int) -> bool:
        """A long reduction is split in two passes only when its rows cannot occupy the device."""
        return n_out < self.info.compute_units * (8 if self.is_cpu else 256)

    def describe(self) -> str:
        """One line for LAZYGRAD_DEBUG and the dump."""
        lanes = ", ".join(f"{b * 8}-bit x{self.lanes(b)}" for b in (4, 8))
        probed = "not probed (LAZYGRAD_PROBE=0)" if self.verified is None else \
            f"probe passed {len(self.verified)} widths"
        return (f"target {self.info.name}: {self.profile.value}, {self.usable_bits}-bit vectors "
                f"({self.bits_reason}); lanes {lanes}; {probed}")


def claimed_bits(info: DeviceInfo) -> int:
    """The register width the device claims (its preferred float width)."""
    return max(32, min(512, info.reported_float_lanes * 32))


def planned_bits(info: DeviceInfo, forced: str) -> tuple[Profile, int, str]:
    """Profile, vector bits and their reason, before the probe: the forced target if one is
    set; on PoCL the LLVM CPU's registers; otherwise the claimed width."""
    if forced == "gpu":
        return Profile.GPU, 128, "forced GPU profile (LAZYGRAD_TARGET=gpu)"
    profile = Profile.CPU if info.is_cpu else Profile.GPU
    if forced != "auto":
        return profile, int(forced), f"forced LAZYGRAD_TARGET={forced}"
    cpu = info.llvm_cpu if info.is_pocl else None
    if cpu is not None and cpu in LLVM_CPU_BITS:
        bits = LLVM_CPU_BITS[cpu]
        note = f"LLVM compiles for {cpu}"
        if bits < claimed_bits(info):
            note += f"; the device claims {claimed_bits(info)}-bit"
        return profile, bits, note
    if cpu is not None:  # a CPU name the table does not know: the claim, checked by the probe
        return profile, claimed_bits(info), f"unknown LLVM CPU {cpu}: the device's claim, probed"
    return profile, claimed_bits(info), "the device's preferred float width"


def describe(info: DeviceInfo, forced: str, verified: frozenset[tuple[int, int]] | None) -> Target:
    """The target for `info` given the forced setting and the probe's verdict. The vector bits
    shrink to the widest the probe passed for 4-byte types (a width failing for every size
    is no register the compiler has)."""
    profile, bits, reason = planned_bits(info, forced)
    if verified is not None:
        ok = max((w * 32 for (b, w) in verified if b == 4), default=32)
        if ok < bits:
            reason += f"; probe passed only {ok}-bit"
            bits = ok
    return Target(info, profile, bits, reason, verified)


# vector types, also as the unaligned typedefs codegen declares (float16u)
_VEC_TYPE = re.compile(r"\b(u?char|u?short|half|u?int|float|u?long|double)(2|3|4|8|16)u?\b")
_SCALAR_BYTES = {"char": 1, "uchar": 1, "short": 2, "ushort": 2, "half": 2, "int": 4, "uint": 4,
                 "float": 4, "long": 8, "ulong": 8, "double": 8}


def vector_bits_of_source(source: str) -> int:
    """Widest vector type (in bits) an OpenCL source names; 0 if none."""
    return max((_SCALAR_BYTES[m.group(1)] * int(m.group(2)) * 8 for m in _VEC_TYPE.finditer(source)),
               default=0)
