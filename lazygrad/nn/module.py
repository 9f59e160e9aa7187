"""Module: the base class of layers and models, plus the containers Sequential, ModuleList and
ModuleDict.

A Module finds its parameters, buffers and children from its attributes: a Tensor that
requires grad when first assigned is a parameter, any other Tensor a buffer (persistent
state such as BatchNorm's running mean), a Module (or a list/tuple/dict of Modules) a child.
Names follow PyTorch ("0.weight", "features.3.running_var") so state dicts line up.

Public names: Module, Sequential, ModuleList, ModuleDict, Identity, IncompatibleKeys.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from lazygrad.frontend.tensor import Tensor


class IncompatibleKeys(NamedTuple):
    """What load_state_dict(strict=False) skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _host_array(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


class Module:
    """Base class: subclasses set parameters / sub-modules as attributes in __init__ and define
    forward(); calling the module calls forward."""

    training: bool = True

    def __setattr__(self, name: str, value: Any) -> None:
        # a tensor's role (parameter or buffer) is fixed when it is first assigned, so freezing a
        # parameter (requires_grad=False) keeps it a parameter, as in PyTorch
        if isinstance(value, Tensor):
            roles = self.__dict__.setdefault("_roles", {})
            roles.setdefault(name, "param" if value.requires_grad else "buffer")
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add state that is saved in state_dict but not trained (non-persistent: not saved)."""
        self.__dict__.setdefault("_roles", {})[name] = "buffer" if persistent else "transient"
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name: str, tensor: Tensor | None) -> None:
        """Add `tensor` as a parameter named `name` (it is made to require grad); None reserves the
        name."""
        if tensor is not None and not tensor.requires_grad:
            tensor.requires_grad_(True)
        self.__dict__.setdefault("_roles", {})[name] = "param"
        object.__setattr__(self, name, tensor)

    # --- forward -----------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's computation: subclasses define it, and calling the module calls it."""
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- structure ---------------------------------------------------------------------------------
    def _own_tensors(self, role: str) -> Iterator[tuple[str, Tensor]]:
        for name, r in self.__dict__.get("_roles", {}).items():
            t = self.__dict__.get(name)
            if r == role and isinstance(t, Tensor):
                yield name, t

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules in attribute order; lists, tuples and dicts of modules expand to
        'name.index' / 'name.key'."""
        for name, v in self.__dict__.items():
            if isinstance(v, Module):
                yield name, v
            elif isinstance(v, (list, tuple)) and v and all(isinstance(m, Module) for m in v):
                for i, m in enumerate(v):
                    yield f"{name}.{i}", m
            elif isinstance(v, dict) and v and all(isinstance(m, Module) for m in v.values()):
                for k, m in v.items():
                    yield f"{name}.{k}", m

    def children(self) -> Iterator[Module]:
        """Direct sub-modules (see `named_children`)."""
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, depth first (iterative, each module once)."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{n}" if name else n, c) for n, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, depth first, each once."""
        for _, m in self.named_modules():
            yield m

    def _named_tensors(self, role: str) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        for prefix, m in self.named_modules():
            for name, t in m._own_tensors(role):
                if id(t) in seen:  # a tensor shared by two modules is listed once
                    continue
                seen.add(id(t))
                yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, tensor) for every parameter of this module and its descendants, each tensor
        once."""
        return self._named_tensors("param")

    def parameters(self) -> list[Tensor]:
        """Every parameter of this module and its descendants, in `named_parameters` order (what an
        optimizer takes)."""
        return [t for _, t in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, tensor) for every persistent buffer (state saved in `state_dict` but not
        trained, such as BatchNorm's running mean)."""
        return self._named_tensors("buffer")

    def buffers(self) -> list[Tensor]:
        """Every persistent buffer, in `named_buffers` order."""
        return [t for _, t in self.named_buffers()]

    def num_parameters(self) -> int:
        """The total number of parameter elements."""
        return sum(p.numel() for p in self.parameters())

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call `fn` on every sub-module, children before parents, and on self last (like torch);
        returns self."""
        for m in list(self.modules())[::-1]:  # children before parents, like PyTorch
            fn(m)
        return self

    # --- modes and gradients -----------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (`mode=True`) or evaluation mode on this module and its descendants
        (dropout and batch norm behave differently); returns self."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode: the same as `train(False)`."""
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> Module:
        """Set `requires_grad` on every parameter (False freezes them); returns self."""
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (`.grad = None`)."""
        for p in self.parameters():
            p.grad = None

    # --- state -------------------------------------------------------------------------------------
    def _state_entries(self) -> Iterator[tuple[str, Tensor]]:
        """This module's own saved state (parameters then buffers); subclasses may add entries."""
        yield from self._own_tensors("param")
        yield from self._own_tensors("buffer")

    def _load_state_entry(self, name: str, value: np.ndarray) -> None:
        """Replace own state entry `name` with `value` (already checked for shape)."""
        t: Tensor = getattr(self, name)
        t.assign(Tensor(np.asarray(value, dtype=t.dtype.np), dtype=t.dtype))

    def state_dict(self) -> dict[str, Tensor]:
        """Every parameter and persistent buffer by dotted name (the live tensors)."""
        out: dict[str, Tensor] = {}
        for prefix, m in self.named_modules():
            for name, t in m._state_entries():
                out.setdefault(f"{prefix}.{name}" if prefix else name, t)
        return out

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values (Tensors, numpy or torch arrays) into this module's parameters and buffers,
        cast to their dtypes. Raises ValueError naming every missing, unexpected and mis-shaped
        key (missing/unexpected ones are allowed when strict=False; shapes must always match)."""
        targets: dict[str, tuple[Module, str, Tensor]] = {}
        for prefix, m in self.named_modules():
            for name, t in m._state_entries():
                targets.setdefault(f"{prefix}.{name}" if prefix else name, (m, name, t))
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        arrays = {k: _host_array(v) for k, v in state.items() if k in targets}
        mismatched = [f"{k}: checkpoint {tuple(a.shape)} vs model {tuple(targets[k][2].shape)}"
                      for k, a in arrays.items() if tuple(a.shape) != tuple(targets[k][2].shape)]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if mismatched:
            problems.append(f"shape mismatch for {'; '.join(mismatched)}")
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for k, a in arrays.items():
            m, name, _ = targets[k]
            m._load_state_entry(name, a)
        return IncompatibleKeys(missing, unexpected)

    # --- printing ----------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its constructor arguments);
        subclasses override it."""
        return ""

    def __repr__(self) -> str:
        kids = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not kids:
            return head + ")"
        lines = [head]
        for name, m in kids:
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + "\n)"


class Sequential(Module):
    """Apply modules (or plain callables) in order; indexable like a list."""

    def __init__(self, *layers: Module) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Module")
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        # PyTorch names Sequential children "0", "1", ... directly
        """The layers, named "0", "1", ... like torch's Sequential."""
        for i, m in enumerate(self.layers):
            yield str(i), m

    def forward(self, x: Any) -> Any:
        """Feed `x` through every layer in order and return the last result."""
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int | slice) -> Any:
        return Sequential(*self.layers[i]) if isinstance(i, slice) else self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def append(self, layer: Module) -> Sequential:
        """Add `layer` at the end; returns self."""
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.append: {type(layer).__name__} is not a Module")
        self.layers.append(layer)
        return self


def _module(m: Any, where: str) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{where}: {type(m).__name__} is not a Module")
    return m


class ModuleList(Module):
    """A list of modules whose parameters are registered, named "0", "1", ... like torch's
    (a ModuleList attribute `layers` gives "layers.0.weight"); no forward."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        self.items = [_module(m, f"ModuleList: item {i}") for i, m in enumerate(modules)]

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The modules, named "0", "1", ... like torch's ModuleList."""
        for i, m in enumerate(self.items):
            yield str(i), m

    def __getitem__(self, i: int | slice) -> Any:
        return ModuleList(self.items[i]) if isinstance(i, slice) else self.items[i]

    def __setitem__(self, i: int, m: Module) -> None:
        self.items[i] = _module(m, "ModuleList.__setitem__")

    def __delitem__(self, i: int | slice) -> None:
        del self.items[i]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.items)

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def append(self, m: Module) -> ModuleList:
        """Add module `m` at the end; returns self."""
        self.items.append(_module(m, "ModuleList.append"))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add every module of `modules` at the end; returns self."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, m: Module) -> None:
        """Insert module `m` before position `index`."""
        self.items.insert(index, _module(m, "ModuleList.insert"))


class ModuleDict(Module):
    """An ordered dict of modules whose parameters are registered under their keys (a ModuleDict
    attribute `heads` with key "cls" gives "heads.cls.weight", like torch); no forward."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        self.entries: dict[str, Module] = {}
        if modules is not None:
            self.update(modules)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The modules under their keys, in insertion order."""
        yield from self.entries.items()

    def __getitem__(self, key: str) -> Module:
        return self.entries[key]

    def __setitem__(self, key: str, m: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: a key must be a non-empty string without '.', got {key!r}")
        self.entries[key] = _module(m, f"ModuleDict[{key!r}]")

    def __delitem__(self, key: str) -> None:
        del self.entries[key]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def keys(self) -> Iterable[str]:
        """The keys, in insertion order."""
        return self.entries.keys()

    def values(self) -> Iterable[Module]:
        """The modules, in insertion order."""
        return self.entries.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        """(key, module) pairs, in insertion order."""
        return self.entries.items()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace the modules of a mapping or of (key, module) pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, m in pairs:
            self[key] = m

    def pop(self, key: str) -> Module:
        """Remove and return the module under `key`."""
        return self.entries.pop(key)

    def clear(self) -> None:
        """Remove every module."""
        self.entries.clear()


class Identity(Module):
    """A placeholder layer that returns its input (torch.nn.Identity)."""

    def forward(self, x: Any) -> Any:
        """Return `x` unchanged."""
        return x
