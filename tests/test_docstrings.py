"""Every public name of lazygrad, lazygrad.Tensor, lazygrad.nn (and its submodules),
lazygrad.optim (and lr_scheduler), lazygrad.data and lazygrad.distributed (and its modules) has a docstring: the API reference is generated from them."""
from __future__ import annotations

import inspect
import types

import lazygrad as lg
import lazygrad.distributed as dist
from lazygrad import Tensor, data, nn, optim

MODULES = [lg, nn, nn.functional, nn.init, nn.state, nn.utils, optim, optim.lr_scheduler, data,
           dist, dist.group, dist.collectives, dist.sampler, dist.ddp, dist.checkpoint]


def public_names(mod: types.ModuleType) -> list[str]:
    """`__all__`, or else the public names the module defines itself (not its imports)."""
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    return [n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == mod.__name__]


def class_members(cls: type) -> list[str]:
    """Public attributes a lazygrad class defines or inherits from a lazygrad base class."""
    names = set()
    for base in cls.__mro__:
        if base.__module__.startswith("lazygrad"):
            names |= {n for n in vars(base) if not n.startswith("_")}
    return sorted(names)


def undocumented() -> list[str]:
    missing = []
    for mod in MODULES:
        if not (mod.__doc__ or "").strip():
            missing.append(mod.__name__)
        for name in public_names(mod):
            obj = getattr(mod, name)
            where = f"{mod.__name__}.{name}"
            if isinstance(obj, (types.ModuleType, lg.DType)):
                continue  # modules are checked as MODULES; a dtype is an instance of the documented DType
            if inspect.isclass(obj):
                if not (obj.__doc__ or "").strip():  # a class's own docstring, not its base's
                    missing.append(where)
                for m in class_members(obj):
                    attr = inspect.getattr_static(obj, m)
                    if isinstance(attr, types.MemberDescriptorType):  # a slot: documented in __slots__
                        slots = next(c.__slots__ for c in obj.__mro__ if m in getattr(c, "__slots__", ()))
                        ok = isinstance(slots, dict) and bool(slots[m].strip())
                    elif callable(attr) or isinstance(attr, (property, staticmethod, classmethod)):
                        # an override may inherit its base method's docstring (inspect.getdoc does)
                        ok = bool(inspect.getdoc(getattr(obj, m)))
                    else:
                        continue  # plain class attributes (constants)
                    if not ok:
                        missing.append(f"{where}.{m}")
            elif callable(obj) and not inspect.getdoc(obj):
                missing.append(where)
    return sorted(set(missing))


def test_every_public_name_has_a_docstring():
    missing = undocumented()
    assert not missing, f"{len(missing)} public names without a docstring: {missing}"


def test_the_check_sees_the_tensor_methods():
    # the check would pass vacuously if it found nothing to check
    members = class_members(Tensor)
    assert len(members) > 130 and {"max", "sum", "backward", "grad", "shape", "lazy_repr"} <= set(members)


def test_max_states_that_it_returns_torchs_pair():
    doc = inspect.getdoc(Tensor.max)
    assert "(values, indices)" in doc and "argmax" in doc and "amax" in doc
    x = Tensor([[1.0, 5.0], [7.0, 2.0]])
    values, indices = x.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0] == x.max(1).indices.tolist()
    assert isinstance(x.max(), Tensor) and x.amax(1).tolist() == [5.0, 7.0]
