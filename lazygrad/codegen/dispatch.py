"""render(lowered kernel) -> OpenCL C: the table from kernel kind to its renderer.

The renderers live by family (render.py: elementwise, reduce, row-total, matmul, pack;
conv.py, sort.py, gather.py, attention.py, lstm.py); this module only picks one and names the result, so the
family modules import the shared helpers of render.py and nothing imports back up.

Public names: render, RENDERERS.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from lazygrad.codegen.attention import render_attention
from lazygrad.codegen.conv import render_conv
from lazygrad.codegen.gather import render_gather, render_segment_sum
from lazygrad.codegen.lower import LoweredKernel
from lazygrad.codegen.lstm import render_lstm
from lazygrad.codegen.render import (RenderedKernel, render_elementwise, render_matmul, render_pack, render_reduce,
                                     render_rowtotal)
from lazygrad.codegen.sort import render_sort
from lazygrad.codehash import code_hash
from lazygrad.runtime.tune import MatmulConfig
from lazygrad.scheduling.kinds import KernelKind


def _copy_or_elementwise(lk: LoweredKernel, cfg: MatmulConfig | None) -> RenderedKernel:
    return render_pack(lk) or render_elementwise(lk)


def _plain(f: Callable[[LoweredKernel], RenderedKernel]) -> Callable[[LoweredKernel, MatmulConfig | None], RenderedKernel]:
    return lambda lk, cfg: f(lk)


RENDERERS: dict[KernelKind, Callable[[LoweredKernel, MatmulConfig | None], RenderedKernel]] = {
    KernelKind.ELEMENTWISE: _copy_or_elementwise,
    KernelKind.REDUCE: _plain(render_reduce),
    KernelKind.ROWWISE: _plain(render_reduce),
    KernelKind.ROWTOTAL: _plain(render_rowtotal),
    KernelKind.MATMUL: render_matmul,
    KernelKind.CONV: _plain(render_conv),
    KernelKind.SORT: _plain(render_sort),
    KernelKind.GATHER: _plain(render_gather),
    KernelKind.SCATTER: _plain(render_segment_sum),
    KernelKind.ATTENTION: _plain(render_attention),
    KernelKind.LSTM: _plain(render_lstm),
}
assert set(RENDERERS) == set(KernelKind), "every kernel kind needs a renderer"


def render(lk: LoweredKernel, matmul_config: MatmulConfig | None = None) -> RenderedKernel:
    """OpenCL C for a lowered kernel (a matmul with `matmul_config`, the heuristic tile if
    None). Its name ends with a hash of its code, so kernels of different code never share a
    name and a plan's kernels can be built as one program."""
    return unique_name(RENDERERS[lk.kernel.kind](lk, matmul_config))


def unique_name(rk: RenderedKernel) -> RenderedKernel:
    new = f"{rk.name}_{code_hash(rk.source)[:6]}"
    rk.source = re.sub(rf"\b{re.escape(rk.name)}\b", new, rk.source)
    rk.name = new
    return rk
