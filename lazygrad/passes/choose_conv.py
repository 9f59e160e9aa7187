"""choose_conv: the direct convolution kernel, or windows times a matmul.

Measured on PoCL (AVX-512, 2 cores; conv + bias + relu, ms direct / im2col):
(32,3,32,32)x(16,3,3,3) 0.3/1.1, (8,64,32,32)x(64,64,3,3) pad 1 4.7/27, (8,128,16,16)x
(128,128,3,3) 1.9/26, (4,512,8,8)x(512,512,3,3) 6/15, and 1x1 convs (a plain matmul:
8x256x16x16 by 256 1.3/1.2, 8x512x16x16 by 512 4.7/3.8-6.5, 8x1024x8x8 by 1024 6-9/6.6-7.1)
within noise of each other. So: the direct kernel for every float32/float64 conv; the im2col
matmul (which accumulates float16 in float32) for other dtypes or when LAZYGRAD_CONV=im2col.

Public names: CHOOSE_CONV, use_direct, DIRECT_DTYPES.
"""
from __future__ import annotations

from lazygrad import dtypes as dt
from lazygrad.config import settings
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op
from lazygrad.ir.windows import conv2d_im2col
from lazygrad.passes.rewrite import Pass
from lazygrad.target import Target

DIRECT_DTYPES = ("float32", "float64")  # the direct kernel computes in the operands' own dtype


def use_direct(d: dt.DType) -> bool:
    """Direct kernel (the CONV2D node stays) or windows + matmul?"""
    return d.name in DIRECT_DTYPES and settings().conv != "im2col"


def _match(n: Node, target: Target) -> bool:
    return n.op is Op.CONV2D and not use_direct(n.dtype)


def _apply(n: Node, target: Target) -> Node:
    return conv2d_im2col(*n.srcs, n.arg)


CHOOSE_CONV = Pass("choose_conv", _match, _apply)
