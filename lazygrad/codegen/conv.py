"""Codegen of the direct convolution kernel (templates/conv.cl.j2): a CONV2D core and its fused
elementwise epilogue → OpenCL C and launch sizes.

Each work-item computes `cob` output channels x `vw` consecutive output columns of one output
row in vector accumulators, looping over the input channels of its group with every kernel tap
unrolled: per tap one vector of input columns (a plain unaligned vector load where the windows
stay inside the row and the stride is 1, lane by lane otherwise) and `cob` scalar weights.
Rows outside the input (padding) are skipped, columns outside it masked. The epilogue runs on
each accumulator as a vector, like the matmul's.

Public names: ConvGeometry, ConvConfig, conv_config, render_conv.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lazygrad import templating  # templating.template: the Oclgrind run spies on which get used
from lazygrad.config import settings
from lazygrad.codegen.render import (MatmulEmitter, RenderedKernel, _bytes, _common, _kernel_name, _matmul_vector_width, _store_vec, _uvec, literal, min_vector_width_attr, store_expr, vliteral, vtype)
from lazygrad.dtypes import DType, bool_
from lazygrad.ir.graph import Node
from lazygrad.codegen.lower import InstrKind, LoweredKernel, Region
from lazygrad.ir.ops import PRIMITIVES, Op
from lazygrad.ir.view import ShapeTracker, prod


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes and window geometry of one CONV2D node."""

    n: int
    c: int
    h: int
    w: int
    o: int
    cg: int
    kh: int
    kw: int
    oh: int
    ow: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    groups: int

    @staticmethod
    def of(core: Node) -> ConvGeometry:
        (n, c, h, w), (o, cg, kh, kw) = core.srcs[0].shape, core.srcs[1].shape
        (sh, sw), (ph, pw), (dh, dw), groups = core.arg
        return ConvGeometry(n, c, h, w, o, cg, kh, kw, core.shape[2], core.shape[3], sh, sw, ph, pw, dh, dw, groups)

    @property
    def og(self) -> int:
        """Output channels per group."""
        return self.o // self.groups

    def span(self, vw: int) -> int:
        """Input columns the windows of `vw` consecutive outputs cover."""
        return (vw - 1) * self.sw + (self.kw - 1) * self.dw + 1

    def rows_checked(self) -> bool:
        """Can a window row fall outside the input (padding rows)?"""
        return self.ph > 0 or (self.oh - 1) * self.sh - self.ph + (self.kh - 1) * self.dh >= self.h


@dataclass(frozen=True)
class ConvConfig:
    vw: int     # output columns per work-item (vector lanes)
    cob: int    # output channels per work-item
    lsz: int    # work-group size

    def key(self) -> str:
        return f"vw{self.vw}/co{self.cob}/l{self.lsz}"


# Blocking measured on PoCL (AVX-512, 2 cores), conv + bias + relu end to end, best of 3 (ms) for
# (32,3,32,32)x(16,3,3,3) and (8,64,32,32)x(64,64,3,3) pad 1, as lanes/channels/local size:
# 16/8/16 0.27 2.35, 16/16/16 0.26 2.33, 16/4/16 0.46 3.16, 16/8/4 0.30 2.29, 16/8/64 0.27 2.26,
# 8/8/16 0.52 3.10. Sixteen channels are within noise of eight; eight leave more work-items
# for small batches and for GPUs.
CONV_MAX_COB = 8
CONV_LOCAL = 16


def conv_config(geo: ConvGeometry, itemsize: int = 4) -> ConvConfig:
    """Lanes: the matmul's vector width (the device's preferred one, at most a 512-bit
    register), but no more than the output row (the last
    block is shifted back into the row). Channels per item: the largest divisor of the group's
    output channels up to CONV_MAX_COB (accumulators in registers). LAZYGRAD_CONV_CFG="vw,cob,lsz"
    overrides (for measurements)."""
    env = settings().conv_cfg
    want_vw, want_cob, lsz = (int(v) for v in env.split(",")) if env else \
        (_matmul_vector_width(itemsize), CONV_MAX_COB, CONV_LOCAL)
    vw = 1
    while vw * 2 <= min(want_vw, geo.ow):
        vw *= 2
    cob = max(d for d in range(1, min(want_cob, geo.og) + 1) if geo.og % d == 0)
    return ConvConfig(vw, cob, lsz)


class ConvEmitter(MatmulEmitter):
    """Epilogue emitter: as the matmul's, but a value broadcast along the lanes (a bias per
    channel) is one scalar load widened, not a gather of the same element."""

    def load_expr(self, buf: str, dt: DType, st: ShapeTracker) -> str:
        st = self.st(st)
        v = st.views[-1]
        if self.w > 1 and dt is not bool_ and st.single and v.strides[-1] == 0 and \
                (v.mask is None or v.mask[-1] == (0, v.shape[-1])):
            idx, valid = st.expr(self.names)
            e = f"(({vtype(dt, self.w)})({buf}[{idx}]))"
            return f"({' && '.join(valid)}?{e}:{vliteral(0, dt, self.w)})" if valid else e
        return super().load_expr(buf, dt, st)


XLoad = Callable[[int], list[str]]  # tap column kx -> statements defining `xv` from row pointer xr


def _plain_load(geo: ConvGeometry, vw: int, dt: DType) -> XLoad:
    """Blocks whose windows stay inside the row: one unaligned vector load for stride 1, the
    lanes gathered otherwise."""
    def load(kx: int) -> list[str]:
        base = f"iw0+{kx * geo.dw}"
        if vw == 1:
            e = f"xr[{base}]"
        elif geo.sw == 1:
            e = f"(*((const __global {_uvec(dt, vw)}*)(xr+{base})))"
        else:
            e = f"(({vtype(dt, vw)})({','.join(f'xr[{base}+{j * geo.sw}]' for j in range(vw))}))"
        return [f"const {vtype(dt, vw)} xv = {e};"]
    return load


def _masked_load(geo: ConvGeometry, vw: int, dt: DType) -> XLoad:
    """Any block: every lane checked against the row at run time (reads nothing outside it)."""
    def load(kx: int) -> list[str]:
        cols = [f"iw0+{kx * geo.dw + j * geo.sw}" for j in range(vw)]
        lanes = [f"(({c})>=0 && ({c})<{geo.w} ? xr[{c}] : {literal(0, dt)})" for c in cols]
        return [f"const {vtype(dt, vw)} xv = {lanes[0] if vw == 1 else f'(({vtype(dt, vw)})({chr(44).join(lanes)}))'};"]
    return load


def _edge_load(geo: ConvGeometry, vw: int, dt: DType, iw0: int) -> XLoad:
    """A block whose first input column iw0 is a constant (the first and the shifted last block
    of a row): each lane is a known column of the row or padding. Stride 1 reads one vector
    inside the row and moves its lanes into place with a constant swizzle (zeros for padding)."""
    zero = literal(0, dt)

    def load(kx: int) -> list[str]:
        cols = [iw0 + kx * geo.dw + j * geo.sw for j in range(vw)]
        inside = [0 <= c < geo.w for c in cols]
        if not any(inside):
            return [f"const {vtype(dt, vw)} xv = {vliteral(0, dt, vw)};"]
        if vw == 1 or geo.sw != 1 or geo.w < vw:
            lanes = [f"xr[{c}]" if ok else zero for c, ok in zip(cols, inside)]
            return [f"const {vtype(dt, vw)} xv = {lanes[0] if vw == 1 else f'(({vtype(dt, vw)})({chr(44).join(lanes)}))'};"]
        start = min(max(cols[0], 0), geo.w - vw)
        if start == cols[0]:  # every lane inside the row, in place
            return [f"const {vtype(dt, vw)} xv = *((const __global {_uvec(dt, vw)}*)(xr+{start}));"]
        lanes = [f"xl.s{c - start:x}" if ok else zero for c, ok in zip(cols, inside)]
        return [f"const {vtype(dt, vw)} xl = *((const __global {_uvec(dt, vw)}*)(xr+{start}));",
                f"const {vtype(dt, vw)} xv = (({vtype(dt, vw)})({','.join(lanes)}));"]
    return load


def _tap_loop(geo: ConvGeometry, cfg: ConvConfig, load: XLoad, ity: str, dt: DType) -> list[str]:
    """The loop over the group's input channels, every kernel tap unrolled."""
    lines = [f"for ({ity} ci = 0; ci < {geo.cg}; ci++) {{",
             f"  const __global {dt.cl}* xc = xg + ci*{geo.h * geo.w};",
             f"  const __global {dt.cl}* wc = wg + ci*{geo.kh * geo.kw};"]
    per_co = geo.cg * geo.kh * geo.kw
    for ky in range(geo.kh):
        lines.append("  {")
        lines.append(f"    const {ity} ih = ih0+{ky * geo.dh};")
        pad = "  "
        if geo.rows_checked():
            lines.append(f"    if (ih >= 0 && ih < {geo.h}) {{")
            pad = "    "
        lines.append(f"  {pad}const __global {dt.cl}* xr = xc + ih*{geo.w};")
        for kx in range(geo.kw):
            lines.append(f"  {pad}{{")
            lines += [f"  {pad}  {x}" for x in load(kx)]
            for i in range(cfg.cob):
                lines.append(f"  {pad}  a{i} += wc[{i * per_co + ky * geo.kw + kx}] * xv;")
            lines.append(f"  {pad}}}")
        if geo.rows_checked():
            # a padded row still contributes 0 * w, like torch and the im2col path: a NaN or
            # infinite weight makes the border outputs NaN (only finite weights add nothing)
            lines.append("    } else {")
            zero = vliteral(0, dt, cfg.vw)
            for kx in range(geo.kw):
                for i in range(cfg.cob):
                    lines.append(f"      a{i} += wc[{i * per_co + ky * geo.kw + kx}] * {zero};")
            lines.append("    }")
        lines.append("  }")
    lines.append("}")
    return lines


# Edge blocks get a loop of their own each (constant columns) up to this many; beyond, one
# loop masks every lane at run time.
MAX_EDGE_LOOPS = 4


def _loops(geo: ConvGeometry, cfg: ConvConfig, ity: str, dt: DType) -> list[dict]:
    """The tap loops of the kernel as branches on the block index: one per edge block (or one
    masked loop for all of them), the plain loop for the blocks inside the row. The last
    branch is unconditional."""
    starts = _block_starts(geo, cfg.vw)
    span = geo.span(cfg.vw)
    edges = [b for b, s in enumerate(starts) if not (0 <= s * geo.sw - geo.pw and s * geo.sw - geo.pw + span <= geo.w)]
    branches = []
    if len(edges) <= MAX_EDGE_LOOPS:
        for b in edges:
            iw0 = starts[b] * geo.sw - geo.pw
            branches.append(dict(cond=f"owb == {b}", lines=[f"// edge block {b}: constant columns from {iw0}"] +
                                 _tap_loop(geo, cfg, _edge_load(geo, cfg.vw, dt, iw0), ity, dt)))
    elif edges:
        branches.append(dict(cond=f"!(iw0 >= 0 && iw0 + {span} <= {geo.w})", lines=["// edge blocks: lanes masked"] +
                             _tap_loop(geo, cfg, _masked_load(geo, cfg.vw, dt), ity, dt)))
    if len(edges) < len(starts):
        branches.append(dict(cond=None, lines=["// blocks inside the row"] +
                             _tap_loop(geo, cfg, _plain_load(geo, cfg.vw, dt), ity, dt)))
    branches[-1]["cond"] = None
    return branches


def _block_starts(geo: ConvGeometry, vw: int) -> list[int]:
    """First output column of every block (the last one shifted back into the row)."""
    return [min(b * vw, geo.ow - vw) for b in range(-(-geo.ow // vw))]


def _lane_chunks(lo: int, vw: int) -> list[list[int]]:
    """Lanes lo..vw-1 as runs of 16, 8, 4, 2, 1 lanes (OpenCL vector sizes), widest first."""
    chunks, j = [], lo
    for size in (16, 8, 4, 2, 1):
        while j + size <= vw:
            chunks.append(list(range(j, j + size)))
            j += size
    return chunks


def _lane_stores(val: str, dt: DType, vw: int, lo: int, idx: str) -> list[str]:
    """Store lanes lo.. of vector `val` (the shifted last block of a row): a few constant
    swizzles, each stored as one (unaligned) vector."""
    if vw == 1 or lo == 0:
        return [_store_vec(val, dt, vw, idx)] if vw > 1 else [store_expr(val, dt, 1, idx)]
    out = []
    for lanes in _lane_chunks(lo, vw):
        part = f"({val}).s{''.join(f'{j:x}' for j in lanes)}"
        if len(lanes) == 1 or dt is bool_:  # a bool vector lane is a 0/-1 mask
            out += [store_expr(f"(-({val}).s{j:x})" if dt is bool_ else f"({val}).s{j:x}", dt, 1, f"{idx}+{j}")
                    for j in lanes]
        else:
            out.append(_store_vec(part, dt, len(lanes), f"{idx}+{lanes[0]}"))
    return out


def render_conv(lk: LoweredKernel, cfg: ConvConfig | None = None) -> RenderedKernel:
    """The direct convolution kernel of a CONV2D core with its fused epilogue."""
    core = lk.kernel.core
    assert core is not None and core.op is Op.CONV2D
    geo = ConvGeometry.of(core)
    cfg = cfg or conv_config(geo, core.dtype.itemsize)
    root = lk.kernel.output
    dt = core.dtype
    vw, cob = cfg.vw, cfg.cob
    acc_i = next(i for i, ins in enumerate(lk.instrs) if ins.kind is InstrKind.ACC)
    x_ins, w_ins = (lk.instrs[a] for a in lk.instrs[acc_i].args)
    big = max(prod(b.shape) for b in lk.buffers) >= 2**31 - 1024
    ity = "long" if big else "int"
    starts = _block_starts(geo, vw)
    plane = geo.oh * geo.ow
    shifted = geo.ow % vw != 0
    lo = (len(starts) - 1) * vw - starts[-1]  # lanes of the (shifted) last block that the one before stores
    full_store: list[str] = []
    part_store: list[str] = []
    epi: list[str] = []
    for i in range(cob):
        em = ConvEmitter(lk, ["n", f"(co0+{i})", "oh", "ow0"], vw, tuple(core.shape), epi, f"e{i}_", ity)
        em.var[acc_i] = f"a{i}"
        em.run(Region.OUTER)
        val = em.var[lk.result]
        full_store.append(_store_vec(val, root.dtype, vw, f"obase+{i * plane}"))
        part_store += _lane_stores(val, root.dtype, vw, lo, f"obase+{i * plane}")
    nb, ncb = len(starts), geo.o // cob
    n_items = geo.n * ncb * geo.oh * nb
    lsz = max(1, min(cfg.lsz, n_items))
    gx = -(-n_items // lsz) * lsz
    vec_attr = min_vector_width_attr(vw * dt.itemsize * 8)
    widths = {vw} | {len(c) for c in _lane_chunks(lo, vw)}
    vec_types = sorted({(d.cl, w) for d in [dt, root.dtype] + [i.dtype for i in lk.instrs] for w in widths
                        if w > 1 and d is not bool_})
    name = _kernel_name(lk, "C")
    src = templating.template("conv.cl.j2").render(
        name=name, g=geo, cfg=cfg.key(), ity=ity, vw=vw, cob=cob, nb=nb, ncb=ncb, n_items=n_items, lsz=lsz,
        guard=gx != n_items, shifted=shifted, lo=lo, x_t=dt.cl, acc_t=vtype(dt, vw),
        zero=vliteral(0, dt, vw), xbuf=f"buf{x_ins.args[0]}", wbuf=f"buf{w_ins.args[0]}",
        branches=_loops(geo, cfg, ity, dt), epi=epi, full_store=full_store, part_store=part_store,
        vec_types=vec_types, vec_attr=vec_attr, **_common(lk))
    epi_flops = sum(PRIMITIVES[i.op].flops for i in lk.instrs if i.kind is InstrKind.ALU and i.region is Region.OUTER)
    flops = 2 * prod(core.shape) * geo.cg * geo.kh * geo.kw + epi_flops * prod(root.shape)
    return RenderedKernel(name, src, (gx,), (lsz,), flops, _bytes(lk))
