"""A scheduled kernel as the engine rendered and built it: what `lg.schedule` lists and what
observers of built kernels (LAZYGRAD_DEBUG=3, the dump, the refactoring oracle) receive.

The scheduler's `Kernel` is frozen; the codegen's output (name, source, launch sizes) and what
building taught the engine (a narrower vector width) sit beside it here instead of being
written into it. The attributes are the public ones a schedule has always had, with the
reasons as the text users read (`reason`, `reasons`, `edge_reasons`, `extra_reasons`); the
typed cuts are on `.kernel`.

Public names: ScheduledKernel, NarrowerBuild.
"""
from __future__ import annotations

from dataclasses import dataclass

from lazygrad.codegen.render import RenderedKernel
from lazygrad.ir.graph import Node
from lazygrad.scheduling.kinds import KernelKind
from lazygrad.scheduling.scheduler import Kernel, kernel_repr


@dataclass(frozen=True)
class NarrowerBuild:
    """The kernel did not build with `failed`-bit vectors and was rendered again with at most
    `bits` (engine.realize's width fallback); `error` is the build log's last line."""

    bits: int
    failed: int
    error: str

    def __str__(self) -> str:
        return f"built with vectors of at most {self.bits} bits: the {self.failed}-bit build failed ({self.error})"


@dataclass(frozen=True)
class ScheduledKernel:
    kernel: Kernel
    rendered: RenderedKernel
    notes: tuple[NarrowerBuild, ...] = ()   # appended to the reason, in the order they happened

    # --- what codegen made ---
    @property
    def name(self) -> str:
        return self.rendered.name

    @property
    def source(self) -> str:
        return self.rendered.source

    @property
    def global_size(self) -> tuple[int, ...]:
        return self.rendered.global_size

    @property
    def local_size(self) -> tuple[int, ...] | None:
        return self.rendered.local_size

    # --- why it ends where it does, as text ---
    @property
    def reason(self) -> str:
        """Why the output is stored, then each build note: `<cut>; <note>; ...`."""
        return "; ".join(t for t in (str(self.kernel.reason), *map(str, self.notes)) if t)

    @property
    def extra_reasons(self) -> list[str]:
        return [str(c) for c in self.kernel.extra_reasons]

    @property
    def reasons(self) -> list[str]:
        return [self.reason, *self.extra_reasons]

    @property
    def edge_reasons(self) -> dict[int, str]:
        """input uid -> why it was not fused."""
        return {uid: str(c) for uid, c in self.kernel.edge_reasons.items()}

    # --- what the scheduler decided ---
    @property
    def kind(self) -> KernelKind:
        return self.kernel.kind

    @property
    def output(self) -> Node:
        return self.kernel.output

    @property
    def outputs(self) -> list[Node]:
        return self.kernel.outputs

    @property
    def extra_outputs(self) -> list[Node]:
        return self.kernel.extra_outputs

    @property
    def inputs(self) -> list[Node]:
        return self.kernel.inputs

    @property
    def ops(self) -> list[Node]:
        return self.kernel.ops

    @property
    def core(self) -> Node | None:
        return self.kernel.core

    @property
    def reduces(self) -> list[Node]:
        return self.kernel.reduces

    @property
    def origins(self) -> list[str]:
        return self.kernel.origins

    @property
    def op_names(self) -> list[str]:
        return self.kernel.op_names

    def user_ops(self) -> list[tuple[str, str]]:
        return self.kernel.user_ops()

    def user_summary(self) -> str:
        return self.kernel.user_summary()

    def ops_by_origin(self) -> list[tuple[str, list[str]]]:
        return self.kernel.ops_by_origin()

    def __repr__(self) -> str:
        return kernel_repr(self.kernel, self.name or self.kind, self.reason)
