"""Markdown tables generated from lazygrad's own tables, for the README and the documentation site.

- `settings_table()`: every LAZYGRAD_* variable, from `lazygrad.config.ENV` and `HELP`.
- `primitives_table()`: every primitive op, from `lazygrad.ir.ops.PRIMITIVES` and the gradient
  rules `lazygrad.autodiff.rules.vjp_rules` / `NO_GRAD_OPS`.
- `tensor_methods_table()`: every public Tensor method and property with the first sentence of
  its docstring.
- `torch_ops_table()`: the PyTorch names of TORCH_SURFACE, each with lazygrad's name and
  whether lazygrad has it.
- `dtypes_table()`: every dtype with its OpenCL C types and size, and the promotion table
  `lazygrad.dtypes.PROMOTION` of every pair.

docs/gen_readme.py writes the settings table into README.md; docs/hooks.py puts all three into
the site's pages at build time, where a page says `<!-- generated: NAME -->`.
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _cell(text: str) -> str:
    """Text for one table cell: a pipe outside a code span would end the cell, so it is escaped
    there (inside backticks Markdown's tables already leave it alone)."""
    parts = text.replace("\n", " ").split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def settings_table() -> str:
    """A markdown table of every variable lazygrad reads, in ENV's order (the legacy alias last)."""
    from lazygrad.config import ENV, HELP

    rows = ["| variable | values | effect | `override` field |", "|---|---|---|---|"]
    for name in [*ENV, *(n for n in HELP if n not in ENV)]:
        values, effect = HELP[name]
        field = f"`{ENV[name][0]}`" if name in ENV else "—"
        rows.append(f"| `{name}` | {values} | {effect} | {field} |")
    return "\n".join(rows) + "\n"


def primitives_table() -> str:
    """One row per primitive op: category, arity, OpenCL C, numpy reference, gradient rule."""
    from lazygrad.autodiff.rules import NO_GRAD_OPS, vjp_rules
    from lazygrad.ir.ops import PRIMITIVES

    rows = ["| op | category | arity | OpenCL C | OpenCL C for integers | numpy reference | gradient |",
            "|---|---|---|---|---|---|---|"]
    for op, p in PRIMITIVES.items():
        cl = _cell(f"`{p.cl}`") if p.cl else "template"
        cl_int = _cell(f"`{p.cl_int}`") if p.cl_int else ""
        ref = f"`np.{p.np.__name__}`" if p.np is not None and p.np.__module__ == "numpy" else (
            "yes" if p.np is not None else "")
        grad = "VJP rule" if op in vjp_rules else "none" if op in NO_GRAD_OPS else "?"
        rows.append(f"| `{op.value}` | {p.category} | {p.arity} | {cl} | {cl_int} | {ref} | {grad} |")
    return "\n".join(rows) + "\n"


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split("\n\n")[0].split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return m.group(1) if m else text


def tensor_methods_table() -> str:
    """Every public Tensor method and property, alphabetically, with its summary; aliases
    (`view` of `reshape`) say so."""
    from lazygrad import Tensor

    rows = ["| method | what it does |", "|---|---|"]
    for name in sorted(n for n in dir(Tensor) if not n.startswith("_")):
        attr = inspect.getattr_static(Tensor, name)
        if not (callable(attr) or isinstance(attr, (property, staticmethod))):
            continue
        func = getattr(attr, "__func__", getattr(attr, "fget", attr))
        real = getattr(func, "__name__", name)
        kind = " (property)" if isinstance(attr, property) else " (static)" if isinstance(attr, staticmethod) else ""
        alias = f" Alias of `{real}`." if real != name and not real.startswith("__") else ""
        summary = _first_sentence(inspect.getdoc(getattr(Tensor, name)) or "")
        rows.append(f"| `{name}`{kind} | {_cell(summary)}{alias} |")
    return "\n".join(rows) + "\n"


# the PyTorch surface issue 16 asks for, by namespace: the table below says which of these
# lazygrad has (looked up in the code at build time, so it cannot go stale)
TORCH_SURFACE: dict[str, tuple[str, ...]] = {
    "torch.Tensor": (
        "abs", "acos", "acosh", "add", "all", "allclose", "amax", "amin", "any", "argmax", "argmin", "argsort", "asin",
        "asinh", "atan", "atan2", "atanh", "bitwise_and", "bitwise_left_shift", "bitwise_not", "bitwise_or",
        "bitwise_right_shift", "bitwise_xor", "byte", "ceil", "char", "chunk", "clamp", "clip", "clone", "copysign", "cos", "cosh",
        "cummax", "cummin", "cumprod", "cumsum", "diag", "diagonal", "div", "erf", "erfc", "exp", "exp2", "expand",
        "expm1", "flatten", "flip", "float", "floor", "fmod", "frac", "gather", "hypot", "index_select", "isclose",
        "isfinite", "isinf", "isnan", "isneginf", "isposinf", "lerp", "log", "log10", "log1p", "log2", "logaddexp",
        "logaddexp2", "logcumsumexp", "logsumexp", "masked_fill", "masked_select", "matmul", "max", "maximum", "mean",
        "min", "minimum", "mul", "neg", "nonzero", "permute", "pow", "prod", "reciprocal", "remainder", "repeat",
        "repeat_interleave", "reshape", "roll", "round", "rsqrt", "scatter", "scatter_reduce", "short", "sigmoid", "sign",
        "sin", "sinh", "softmax", "sort", "split", "sqrt", "squeeze", "std", "sub", "sum", "tan", "tanh", "to", "topk",
        "transpose", "tril", "triu", "trunc", "unflatten", "unfold", "unsqueeze", "var", "view",
    ),
    "torch": (
        "allclose", "arange", "cat", "concat", "cumsum", "diag", "einsum", "empty", "exp", "eye", "flatten", "full",
        "full_like", "isclose", "linspace", "logspace", "matmul", "maximum", "meshgrid", "normal", "ones",
        "ones_like", "rand", "rand_like", "randint", "randn", "randn_like", "stack", "std_mean", "sum", "tensor",
        "tril", "triu", "var_mean", "where", "zeros", "zeros_like",
    ),
    "torch.nn.functional": (
        "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
        "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "batch_norm", "binary_cross_entropy",
        "binary_cross_entropy_with_logits", "celu", "conv1d", "conv2d", "conv3d", "conv_transpose2d", "cross_entropy",
        "dropout", "elu", "embedding", "gelu", "hardsigmoid", "hardswish", "hardtanh", "interpolate", "l1_loss",
        "layer_norm", "leaky_relu", "linear", "log_softmax", "logsigmoid", "max_pool1d", "max_pool2d", "max_pool3d",
        "max_unpool2d", "mish", "mse_loss", "nll_loss", "normalize", "one_hot", "pad", "relu", "relu6", "selu",
        "sigmoid", "silu", "softmax", "softmin", "softplus", "softsign", "tanh",
    ),
    "torch.nn": (
        "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool2d", "CELU", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "ELU", "GELU", "Hardsigmoid", "Hardswish",
        "Hardtanh", "LeakyReLU", "LogSigmoid", "LogSoftmax", "Mish", "ReLU", "ReLU6", "SELU", "SiLU", "Sigmoid",
        "Softmax", "Softmin", "Softplus", "Softsign", "Tanh",
    ),
    "torch.utils.data": ("DataLoader", "Dataset", "Subset", "TensorDataset", "random_split"),
}


def torch_ops_table() -> str:
    """One row per name of TORCH_SURFACE: the torch name, the lazygrad name, and whether
    lazygrad has it (found by looking it up in the lazygrad namespace of the same place)."""
    import lazygrad as lg
    import lazygrad.nn.functional as F
    import lazygrad.utils.data as D

    homes = {"torch.Tensor": (lg.Tensor, "Tensor."), "torch": (lg, "lg."), "torch.nn.functional": (F, "F."),
             "torch.nn": (lg.nn, "nn."), "torch.utils.data": (D, "lazygrad.utils.data.")}
    rows = ["| torch name | lazygrad name | status |", "|---|---|---|"]
    have = total = 0
    for space, names in TORCH_SURFACE.items():
        home, prefix = homes[space]
        for name in names:
            ok = hasattr(home, name)
            have, total = have + ok, total + 1
            rows.append(f"| `{space}.{name}` | `{prefix}{name}` | {'supported' if ok else 'not yet'} |")
    return f"{have} of {total} names supported.\n\n" + "\n".join(rows) + "\n"


def dtypes_table() -> str:
    """The dtypes (register and buffer C types, bytes) and the result dtype of a binary op on
    every pair of them, from lazygrad.dtypes."""
    from lazygrad.dtypes import DTYPES, PROMOTION

    rows = ["| dtype | OpenCL C (registers) | OpenCL C (buffers) | bytes |", "|---|---|---|---|"]
    rows += [f"| `lg.{d.name}` | `{d.cl}` | `{d.cl_store}` | {d.itemsize} |" for d in DTYPES.values()]
    names = list(DTYPES.values())
    grid = ["| a \\ b | " + " | ".join(d.name for d in names) + " |", "|---" * (len(names) + 1) + "|"]
    grid += [f"| **{a.name}** | " + " | ".join(PROMOTION[(a, b)].name for b in names) + " |" for a in names]
    return "\n".join(rows) + "\n\nPromotion of tensor operands (`a op b`):\n\n" + "\n".join(grid) + "\n"


def benchmarks_page() -> str:
    """bench/README.md (what each benchmark measures, how, and the latest ratios), with its own
    title dropped and links outside the site turned into plain paths."""
    text = (Path(__file__).resolve().parents[1] / "bench" / "README.md").read_text()
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    body = "\n".join(lines)
    return re.sub(r"\[([^]]+)\]\((?!https?:|#)([^)]+)\)", r"\1 (`bench/\2`)", body)


TABLES = {"benchmarks": benchmarks_page, "settings": settings_table, "primitives": primitives_table, "tensor-methods": tensor_methods_table,
          "torch-ops": torch_ops_table, "dtypes": dtypes_table}
