"""Fault-injecting device behaviour, for proving the fallbacks on any CPU (LAZYGRAD_FAULT).

Each fault stands in for something a real driver does (PoCL 3.0 / LLVM 14 on an AMD Zen 4,
where 512-bit vectors are not what the compiler targets):

- `reject512`:  a program naming a vector type of 512 bits or more fails to build.
- `missing512`: such a program builds, but its kernels that name one are missing from it
  (PoCL's "AVX vector return ... changes the ABI" kernels: INVALID_KERNEL_NAME at launch).
- `wrongprobe512`: the probe's kernels of 512 bits or more compute wrong values.
- `abort512`: building such a program aborts the process (LLVM's "Cannot emit physreg copy
  instruction"): only the probe, in its child process, may ever try one.

The runtime and the probe consult these pure functions at the points where a real driver
would fail; nothing here touches a device.

Public names: FAULTS, check_faults, refusal, missing_kernels, corrupts_probe.
"""
from __future__ import annotations

import os
import re

from lazygrad.target import vector_bits_of_source

WIDE_BITS = 512
FAULTS = {
    "reject512": "the compiler rejects programs with 512-bit vectors",
    "missing512": "programs build without their kernels that use 512-bit vectors",
    "wrongprobe512": "probe kernels with 512-bit vectors compute wrong values",
    "abort512": "building a program with 512-bit vectors aborts the process",
}
_KERNEL = re.compile(r"__kernel\b[^\n]*?\bvoid\s+(\w+)\s*\(")


def check_faults(faults: frozenset[str]) -> None:
    bad = sorted(set(faults) - set(FAULTS))
    if bad:
        raise ValueError(f"lazygrad: LAZYGRAD_FAULT names unknown faults {bad}; known: {sorted(FAULTS)}")


def refusal(faults: frozenset[str], source: str) -> str | None:
    """The build log of a refused build, or None when the (faulty) compiler accepts `source`.
    Under `abort512` the process dies here, as inside a crashing driver."""
    if "abort512" in faults and vector_bits_of_source(source) >= WIDE_BITS:
        os.abort()
    if "reject512" in faults and vector_bits_of_source(source) >= WIDE_BITS:
        return "fault injection (LAZYGRAD_FAULT=reject512): 512-bit vector types are not supported"
    return None


def kernel_bodies(source: str) -> dict[str, str]:
    """Kernel name -> its text (from its `__kernel` to the next one)."""
    marks = list(_KERNEL.finditer(source))
    return {m.group(1): source[m.start():(marks[i + 1].start() if i + 1 < len(marks) else len(source))]
            for i, m in enumerate(marks)}


def missing_kernels(faults: frozenset[str], source: str) -> frozenset[str]:
    """Kernels the faulty compiler leaves out of the program built from `source`."""
    if "missing512" not in faults:
        return frozenset()
    return frozenset(n for n, body in kernel_bodies(source).items() if vector_bits_of_source(body) >= WIDE_BITS)


def corrupts_probe(faults: frozenset[str], bits: int) -> bool:
    return "wrongprobe512" in faults and bits >= WIDE_BITS
