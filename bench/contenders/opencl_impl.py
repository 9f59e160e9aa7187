"""Hand-written pyopencl kernels: the ceilings lazygrad's generated code is measured against.

Written for the PoCL CPU device: every work-item processes float8 vectors with OpenCL
builtins (exp, tanh, fmax on float8) and a scalar tail. Output buffers are allocated once
(a ceiling, not an allocator benchmark). Kernels:

- elementwise (chain of any length, issue-2 chain, x*2+1, copy): one float8 per work-item;
- sum of squares: stage 1 splits the vector into NUM_CHUNKS contiguous chunks with float8
  accumulators, stage 2 is one work-item adding the partials;
- softmax / layernorm: one row per work-item, three float8 passes over the row.

Public names: BUILDERS, version, device_info.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from bench.contenders.base import Builder, Runnable
from bench.workloads import LAYERNORM_EPS, Arrays, Params, chain_ops

NUM_CHUNKS = 64


def version() -> str:
    import pyopencl
    return pyopencl.VERSION_TEXT


@lru_cache(maxsize=1)
def _context() -> tuple[Any, Any]:
    """One context + in-order queue on the first CPU device (PoCL), else the first device."""
    import pyopencl as cl
    devices = [d for p in cl.get_platforms() for d in p.get_devices()]
    cpu = [d for d in devices if d.type & cl.device_type.CPU]
    device = (cpu or devices)[0]
    ctx = cl.Context([device])
    return ctx, cl.CommandQueue(ctx)


def device_info() -> dict[str, str]:
    """Name, vendor, driver and OpenCL version of the device the kernels run on."""
    ctx, _ = _context()
    d = ctx.devices[0]
    return {"name": d.name.strip(), "vendor": d.vendor.strip(), "driver": d.driver_version,
            "opencl": d.version, "platform": d.platform.name, "compute_units": str(d.max_compute_units),
            "preferred_float_vector_width": str(d.preferred_vector_width_float)}


@lru_cache(maxsize=None)
def _program(source: str) -> Any:
    import pyopencl as cl
    ctx, _ = _context()
    return cl.Program(ctx, source).build()


@lru_cache(maxsize=None)
def _kernel(source: str, name: str = "k") -> Any:
    """The kernel object, retrieved once (pyopencl makes a new one per attribute access)."""
    return getattr(_program(source), name)


# ---------------------------------------------------------------------------------------
# elementwise: the body maps float8 `v` (or float `v` in the tail) to `v`

_ELEMENTWISE = """
__kernel void k(__global const float *x, __global float *out, const int n) {
    const int i = get_global_id(0);
    const int nv = n / 8;
    if (i < nv) {
        float8 v = vload8(i, x);
        BODY8
        vstore8(v, i, out);
    } else {
        for (int j = nv * 8; j < n; j++) {
            float v = x[j];
            BODY1
            out[j] = v;
        }
    }
}
"""

_CHAIN_LINES = {
    "mul": "v = v * {c}f;", "add": "v = v + {c}f;", "sub": "v = v - {c}f;",
    "relu": "v = fmax(v, 0.0f);",
}

_ISSUE2 = ("v = tanh(fmax(v * 2.0f + 1.0f, 0.0f) * exp(-v) + 1.0f / (1.0f + exp(-v)));")


def _elementwise_source(body: str) -> str:
    return _ELEMENTWISE.replace("BODY8", body).replace("BODY1", body)


def _buffers(x: np.ndarray, out_shape: tuple[int, ...]) -> tuple[Any, Any, np.ndarray]:
    import pyopencl as cl
    ctx, queue = _context()
    mf = cl.mem_flags
    x_buf = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x)
    host_out = np.empty(out_shape, np.float32)
    out_buf = cl.Buffer(ctx, mf.READ_WRITE, host_out.nbytes)
    queue.finish()
    return x_buf, out_buf, host_out


def _read(buf: Any, host: np.ndarray) -> np.ndarray:
    import pyopencl as cl
    _, queue = _context()
    cl.enqueue_copy(queue, host, buf)
    return host.copy()


def _elementwise(body: str, p: Params, a: Arrays) -> Runnable:
    _, queue = _context()
    x = a["x"]
    n = x.size
    kernel = _kernel(_elementwise_source(body))
    x_buf, out_buf, host = _buffers(x, x.shape)
    global_size = (n // 8 + (1 if n % 8 else 0),)

    def step() -> Any:
        kernel(queue, global_size, None, x_buf, out_buf, np.int32(n))
        queue.finish()
        return out_buf
    return Runnable(step, to_numpy=lambda b: _read(b, host), count_kernels=lambda: 1)


def _chain(p: Params, a: Arrays) -> Runnable:
    body = " ".join(_CHAIN_LINES[op].format(c=c) for op, c in chain_ops(p["length"]))
    return _elementwise(body, p, a)


# ---------------------------------------------------------------------------------------
# sum of squares, two stages

_SUM_SQ = """
__kernel void partial(__global const float *x, __global float *partials, const int n,
                      const int chunk) {
    const int g = get_global_id(0);
    const int nv = n / 8;
    const int start = g * chunk;
    const int stop = min(start + chunk, nv);
    float8 acc = (float8)(0.0f);
    for (int i = start; i < stop; i++) { float8 v = vload8(i, x); acc += v * v; }
    float s = acc.s0 + acc.s1 + acc.s2 + acc.s3 + acc.s4 + acc.s5 + acc.s6 + acc.s7;
    if (g == get_global_size(0) - 1) { for (int j = nv * 8; j < n; j++) s += x[j] * x[j]; }
    partials[g] = s;
}
__kernel void finish(__global const float *partials, __global float *out, const int count) {
    float s = 0.0f;
    for (int i = 0; i < count; i++) s += partials[i];
    out[0] = s;
}
"""


def _sum_sq(p: Params, a: Arrays) -> Runnable:
    import pyopencl as cl
    ctx, queue = _context()
    x = a["x"]
    n = x.size
    partial_kernel, finish_kernel = _kernel(_SUM_SQ, "partial"), _kernel(_SUM_SQ, "finish")
    x_buf, out_buf, host = _buffers(x, (1,))
    partials = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, 4 * NUM_CHUNKS)
    chunk = -(-(n // 8) // NUM_CHUNKS)

    def step() -> Any:
        partial_kernel(queue, (NUM_CHUNKS,), (1,), x_buf, partials, np.int32(n), np.int32(chunk))
        finish_kernel(queue, (1,), (1,), partials, out_buf, np.int32(NUM_CHUNKS))
        queue.finish()
        return out_buf
    return Runnable(step, to_numpy=lambda b: _read(b, host)[0], count_kernels=lambda: 2)


# ---------------------------------------------------------------------------------------
# row-wise: one row per work-item

_ROWWISE_HEAD = """
inline float hsum8(float8 v) { return v.s0 + v.s1 + v.s2 + v.s3 + v.s4 + v.s5 + v.s6 + v.s7; }
inline float hmax8(float8 v) {
    float4 m = fmax(v.lo, v.hi); float2 m2 = fmax(m.lo, m.hi); return fmax(m2.x, m2.y);
}
"""

_SOFTMAX = _ROWWISE_HEAD + """
__kernel void k(__global const float *x, __global float *out, const int cols) {
    const size_t r = get_global_id(0);
    __global const float *row = x + r * cols;
    __global float *orow = out + r * cols;
    const int nv = cols / 8;
    float8 m8 = (float8)(-INFINITY);
    for (int i = 0; i < nv; i++) m8 = fmax(m8, vload8(i, row));
    float m = hmax8(m8);
    for (int j = nv * 8; j < cols; j++) m = fmax(m, row[j]);
    float8 s8 = (float8)(0.0f);
    for (int i = 0; i < nv; i++) s8 += exp(vload8(i, row) - m);
    float s = hsum8(s8);
    for (int j = nv * 8; j < cols; j++) s += exp(row[j] - m);
    const float inv = 1.0f / s;
    for (int i = 0; i < nv; i++) vstore8(exp(vload8(i, row) - m) * inv, i, orow);
    for (int j = nv * 8; j < cols; j++) orow[j] = exp(row[j] - m) * inv;
}
"""

_LAYERNORM = _ROWWISE_HEAD + """
__kernel void k(__global const float *x, __global float *out, const int cols) {
    const size_t r = get_global_id(0);
    __global const float *row = x + r * cols;
    __global float *orow = out + r * cols;
    const int nv = cols / 8;
    float8 s8 = (float8)(0.0f);
    for (int i = 0; i < nv; i++) s8 += vload8(i, row);
    float s = hsum8(s8);
    for (int j = nv * 8; j < cols; j++) s += row[j];
    const float mu = s / cols;
    float8 q8 = (float8)(0.0f);
    for (int i = 0; i < nv; i++) { float8 d = vload8(i, row) - mu; q8 += d * d; }
    float q = hsum8(q8);
    for (int j = nv * 8; j < cols; j++) { float d = row[j] - mu; q += d * d; }
    const float rstd = rsqrt(q / cols + EPSf);
    for (int i = 0; i < nv; i++) vstore8((vload8(i, row) - mu) * rstd, i, orow);
    for (int j = nv * 8; j < cols; j++) orow[j] = (row[j] - mu) * rstd;
}
""".replace("EPS", repr(LAYERNORM_EPS))


def _rowwise(source: str, p: Params, a: Arrays) -> Runnable:
    _, queue = _context()
    x = a["x"]
    rows, cols = x.shape
    kernel = _kernel(source)
    x_buf, out_buf, host = _buffers(x, x.shape)

    def step() -> Any:
        kernel(queue, (rows,), None, x_buf, out_buf, np.int32(cols))
        queue.finish()
        return out_buf
    return Runnable(step, to_numpy=lambda b: _read(b, host), count_kernels=lambda: 1)


def _overhead(p: Params, a: Arrays) -> Runnable:
    """The launch floor: enqueue one tiny kernel and wait for it."""
    return _elementwise("v = fmax(v * 2.0f + 1.0f, 0.0f);", p, a)


BUILDERS: dict[str, Builder] = {
    "chain": _chain,
    "issue2": lambda p, a: _elementwise(_ISSUE2, p, a),
    "copylike": lambda p, a: _elementwise("v = v * 2.0f + 1.0f;", p, a),
    "copy": lambda p, a: _elementwise("", p, a),
    "sum_sq": _sum_sq,
    "softmax": lambda p, a: _rowwise(_SOFTMAX, p, a),
    "layernorm": lambda p, a: _rowwise(_LAYERNORM, p, a),
    "overhead": _overhead,
}
