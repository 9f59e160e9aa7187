"""Graph passes: the backend's decisions, made as graph -> graph rewrites when a plan is built.

The front end and autodiff build one node per operation the user asked for: a REDUCE, a
MATMUL, a CONV2D. How the device should compute it — a long reduction split in two so its
rows occupy every core, a matmul operand copied into panels, a convolution as the direct
kernel or as windows times a matmul — depends on the target and the settings, so it is
decided here, at realize time, by the engine, and never while the graph is being built.
Every input of a decision (the target's key, the codegen settings) is in the plan key, so a
cached plan is the plan these passes would make again.

Each pass is a `Pass`: a cheap `match(node, target)` and an `apply(node, target)` that
returns the replacement subgraph (same shape and dtype). `run` applies them in order, each a
full bottom-up rewrite, so a later pass sees what an earlier one built (choose_conv's im2col
matmul is then packed by pack_matmul).

Public names: Pass, PIPELINE, run, rewrite.
"""
from __future__ import annotations

from lazygrad.ir.graph import Node
from lazygrad.passes.choose_conv import CHOOSE_CONV
from lazygrad.passes.fuse_attention import FUSE_ATTENTION
from lazygrad.passes.fuse_lstm import FUSE_LSTM
from lazygrad.passes.pack_matmul import PACK_MATMUL
from lazygrad.passes.rewrite import Pass, rewrite
from lazygrad.passes.split_reduce import SPLIT_REDUCE
from lazygrad.target import Target

# fuse_attention first: the matmuls and the softmax it replaces are never split or packed;
# fuse_lstm and choose_conv next: the matmul either may build is packed by pack_matmul like any other
PIPELINE: tuple[Pass, ...] = (FUSE_ATTENTION, FUSE_LSTM, CHOOSE_CONV, SPLIT_REDUCE, PACK_MATMUL)


def run(outputs: list[Node], target: Target) -> list[Node]:
    """`outputs` after every pass: the nodes to schedule in their place (one per output, in
    order; an output no pass touched is itself)."""
    for p in PIPELINE:
        outputs = rewrite(outputs, p, target)
    return outputs
