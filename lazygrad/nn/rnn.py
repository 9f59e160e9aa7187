"""Recurrent layers with torch's parameter names and layout, so a torch state_dict loads
unchanged: RNN (tanh or relu), LSTM and GRU, with batch_first, num_layers, bidirectional,
initial states, dropout between layers and optional biases.

The time loop builds lazy graph (nothing runs per step). The input part of every gate, x_t
W_ih^T (+ the biases that are simply added), is one matmul over all time steps of a layer and
direction. An LSTM step is then one kernel: an LSTM_CELL node (ir/lstm.py, frontend
`lstm_cell`) whose kernel computes the gates' matmul h W_hh^T, adds the step's input slice and
does the cell update, writing h, c and the gate activations the backward reads (its gradient
is plain graph from those: 3 kernels per step). Its offsets are kernel arguments, so the steps
of a sequence share one program. The step with the zero initial state has no matmul (one
elementwise kernel). A cell the kernel declines (mixed dtypes, float16) and LAZYGRAD_FUSE=0
use the plain graph: the matmul with the slice in its epilogue, then the elementwise cell.
RNN: one matmul per step with the slice and the nonlinearity in its epilogue; GRU: the matmul,
then the elementwise cell (2 kernels). Gates are laid out like torch's: (i, f, g, o) for LSTM
and (r, z, n) for GRU, in blocks of hidden_size rows of weight_ih / weight_hh.

Public names: RNN, LSTM, GRU.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, Optional, Union

import numpy as np

from lazygrad.ir.random import next_seed
from lazygrad.frontend.linalg import lstm_cell
from lazygrad.frontend.tensor import Tensor, cat, stack
from lazygrad.nn import functional as F
from lazygrad.nn.layers import _param
from lazygrad.nn.module import Module

State = Union[Tensor, tuple[Tensor, Tensor]]


class Step(NamedTuple):
    """What a cell needs for one time step: the precomputed input part of the gates (N, G*H)
    at that step, the hidden part's weight (G*H, H) and bias (or None), and the state."""

    xw: Tensor
    w_hh: Tensor
    b_hh: Optional[Tensor]
    h: Optional[Tensor]   # None: the zero initial state (its matmul is skipped)
    c: Optional[Tensor]   # the LSTM cell state


def _hidden(step: Step) -> Tensor | None:
    return None if step.h is None else step.h @ step.w_hh.T


def _rnn_cell(act: Callable[[Tensor], Tensor]) -> Callable[[Step], tuple[Tensor, None]]:
    def cell(s: Step) -> tuple[Tensor, None]:
        hw = _hidden(s)
        return act(s.xw if hw is None else s.xw + hw), None
    return cell


def _lstm_cell(s: Step) -> tuple[Tensor, Tensor]:
    if s.h is not None and s.c is not None:
        # one LSTM_CELL node: the gates' matmul with the cell update, one kernel (ir/lstm.py);
        # h' and c' are views of its value, so the next step reads them in place
        h, c, _ = lstm_cell(s.xw, s.h, s.c, s.w_hh)
        return h, c
    # the zero initial state: no matmul, the cell update is one elementwise kernel writing h and
    # c (stored: the next step's fused kernel reads them from buffers)
    i, f, g, o = s.xw.chunk(4, -1)
    c = i.sigmoid() * g.tanh()
    return (o.sigmoid() * c.tanh()).contiguous(), c.contiguous()


def _gru_cell(s: Step) -> tuple[Tensor, None]:
    # n needs r * (W_hn h + b_hn), so the hidden bias cannot be folded into the input part
    xr, xz, xn = s.xw.chunk(3, -1)
    hw = _hidden(s)
    if hw is None:
        if s.b_hh is None:
            hr = hz = hn = None
        else:
            hr, hz, hn = s.b_hh.chunk(3, -1)
    else:
        hr, hz, hn = (hw if s.b_hh is None else hw + s.b_hh).chunk(3, -1)
    r = xr.sigmoid() if hr is None else (xr + hr).sigmoid()
    z = xz.sigmoid() if hz is None else (xz + hz).sigmoid()
    n = xn.tanh() if hn is None else (xn + r * hn).tanh()
    h_new = (1.0 - z) * n
    return (h_new if s.h is None else h_new + z * s.h), None


class Mode(NamedTuple):
    """A recurrence: gate blocks per layer, the cell, whether it carries a cell state, and
    whether the hidden bias may be folded into the precomputed input part, and whether the new
    state is stored explicitly (a kernel boundary) after each step."""

    gates: int
    cell: Callable[[Step], tuple[Tensor, Optional[Tensor]]]
    has_cell_state: bool
    fold_hidden_bias: bool
    store_state: bool


_MODES: dict[str, Mode] = {
    "RNN_TANH": Mode(1, _rnn_cell(lambda x: x.tanh()), False, True, False),
    "RNN_RELU": Mode(1, _rnn_cell(lambda x: x.relu()), False, True, False),
    "LSTM": Mode(4, _lstm_cell, True, True, False),   # the cell stores its state itself
    "GRU": Mode(3, _gru_cell, False, False, True),
}


class _RNNBase(Module):
    """Shared by RNN, LSTM and GRU: parameters named like torch's (weight_ih_l{k}[_reverse],
    weight_hh_l{k}[_reverse], bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse]), initialised
    U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) like torch, and the time loop."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0) -> None:
        name = type(self).__name__
        for what, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name}: {what} must be a positive int, got {v!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        if proj_size:
            raise ValueError(f"{name}: proj_size is not supported")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
        m = _MODES[mode]
        rng = np.random.default_rng(next_seed())
        bound = 1.0 / math.sqrt(hidden_size)
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size * dirs
            for sfx in self._suffixes():
                shapes = [("weight_ih", (m.gates * hidden_size, fan_in)), ("weight_hh", (m.gates * hidden_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (m.gates * hidden_size,)), ("bias_hh", (m.gates * hidden_size,))]
                for base, shape in shapes:
                    p = _param(*shape)
                    p.assign(Tensor(rng.uniform(-bound, bound, shape).astype(np.float32)))
                    setattr(self, f"{base}_l{layer}{sfx}", p)

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def _weights(self, layer: int, sfx: str) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        g = lambda base: getattr(self, f"{base}_l{layer}{sfx}", None)  # noqa: E731
        return g("weight_ih"), g("weight_hh"), g("bias_ih"), g("bias_hh")

    def _direction(self, x: Tensor, layer: int, sfx: str, h0: Tensor | None, c0: Tensor | None
                   ) -> tuple[list[Tensor], Tensor, Tensor | None]:
        """Run one layer in one direction over x (L, N, in): the hidden state at each time
        position (in time order), the last hidden and cell states."""
        m = _MODES[self.mode]
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, sfx)
        L, N, _ = x.shape
        xw = x.reshape(L * N, x.shape[2]) @ w_ih.T        # every step's input part in one matmul
        b_in = b_ih
        if b_ih is not None and m.fold_hidden_bias:
            b_in = b_ih + b_hh
        if b_in is not None:
            xw = xw + b_in
        xw = xw.reshape(L, N, w_ih.shape[0])
        hidden_bias = None if m.fold_hidden_bias else b_hh
        h, c = h0, c0
        out: list[Tensor | None] = [None] * L
        order = range(L - 1, -1, -1) if sfx else range(L)
        for t in order:
            h, c_new = m.cell(Step(xw[t], w_hh, hidden_bias, h, c))
            # the new state is a kernel boundary: otherwise the scheduler may fold step t's
            # cell update into step t+1's matmul prologue, recomputing the whole recurrence so
            # far (the prologue grew 49 flops per element per step for LSTM, then was cut)
            # (RNN's new state is already the matmul's epilogue, stored for its two readers)
            if m.store_state:
                h = h.contiguous()
            c = c_new
            out[t] = h
        assert h is not None
        if m.has_cell_state and c is None:
            c = Tensor.zeros(N, self.hidden_size)
        return out, h, c  # type: ignore[return-value]

    def _initial(self, hx: State | None, n: int, batched: bool) -> tuple[Tensor | None, Tensor | None]:
        name = type(self).__name__
        m = _MODES[self.mode]
        if hx is None:
            return None, None
        if m.has_cell_state:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: the initial state must be a pair (h_0, c_0)")
            h0, c0 = hx
        else:
            if not isinstance(hx, Tensor):
                raise TypeError(f"{name}: the initial state h_0 must be a Tensor, got {type(hx).__name__}")
            h0, c0 = hx, None
        want = (self.num_layers * len(self._suffixes()), n, self.hidden_size)
        for what, s in (("h_0", h0), ("c_0", c0)):
            if s is None:
                continue
            shape = s.shape if batched else (s.shape[0], 1) + s.shape[1:]
            if shape != want:
                raise ValueError(f"{name}: {what} has shape {s.shape}, expected "
                                 f"{want if batched else (want[0], want[2])}")
        if not batched:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if c0 is not None else None
        return h0, c0

    def forward(self, input: Tensor, hx: State | None = None) -> tuple[Tensor, State]:
        """(output, h_n) — (output, (h_n, c_n)) for LSTM — like torch. input (L, N, input_size)
        ((N, L, input_size) with batch_first, (L, input_size) unbatched); the initial state(s)
        (num_layers * num_directions, N, hidden_size), zeros when not given. output holds the
        last layer's hidden state at every step, both directions concatenated."""
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (2, 3):
            raise ValueError(f"{name}: input must be a 3-D (batched) or 2-D (unbatched) Tensor, got "
                             f"{getattr(input, 'shape', type(input).__name__)}")
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[2] != self.input_size:
            raise ValueError(f"{name}: input has {x.shape[2]} features (shape {input.shape}), expected "
                             f"input_size {self.input_size}")
        if x.shape[0] == 0:
            raise ValueError(f"{name}: input has no time steps (shape {input.shape})")
        n = x.shape[1]
        h0, c0 = self._initial(hx, n, batched)
        m = _MODES[self.mode]
        hs: list[Tensor] = []
        cs: list[Tensor] = []
        sfxs = self._suffixes()
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(sfxs):
                k = layer * len(sfxs) + d
                hi = h0[k] if h0 is not None else None
                ci = c0[k] if c0 is not None else None
                if m.has_cell_state and hi is not None and ci is None:
                    ci = Tensor.zeros(n, self.hidden_size)
                seq, h, c = self._direction(x, layer, sfx, hi, ci)
                outs.append(seq)
                hs.append(h)
                if c is not None:
                    cs.append(c)
            steps = [s[0] for s in zip(*outs)] if len(outs) == 1 else [cat(list(s), -1) for s in zip(*outs)]
            x = stack(steps, 0)
            if layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, self.training)
        out = x
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        h_n = stack(hs, 0)
        h_n = h_n if batched else h_n.squeeze(1)
        if not m.has_cell_state:
            return out, h_n
        c_n = stack(cs, 0)
        return out, (h_n, c_n if batched else c_n.squeeze(1))

    def extra_repr(self) -> str:
        """The constructor arguments, as torch prints them."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RNNBase):
    """torch.nn.RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional)


class LSTM(_RNNBase):
    """torch.nn.LSTM: gates (i, f, g, o) from x_t and h_{t-1}; c_t = f c_{t-1} + i g,
    h_t = o tanh(c_t). The initial state is the pair (h_0, c_0); proj_size is not supported."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size)


class GRU(_RNNBase):
    """torch.nn.GRU: r and z gates, n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    h_t = (1 - z) n + z h_{t-1}."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
