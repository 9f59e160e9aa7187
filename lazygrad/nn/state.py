"""Checkpoints in the safetensors format: state dicts, and model + optimizer checkpoints.

Every tensor is stored with its own dtype (float16/32/64, int32/64, bool) and comes back with
it. Files are written atomically (a temporary file renamed into place), so a crash never
leaves half a checkpoint under the final name. Before handing a file to safetensors its
header is checked, so a truncated or foreign file gives an error that says which, and a
checkpoint that does not fit the model names the missing, unexpected and mis-shaped keys.

Layout of a checkpoint file: model tensors under "model.<name>", optimizer tensors under
"optimizer.<param index>.<state name>"; optimizer hyperparameters and step counts, and the
caller's own metadata, as JSON in the safetensors metadata.

Public names: CheckpointError, save_state_dict, load_state_dict, load_arrays, save_checkpoint, load_checkpoint,
read_header.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.frontend.tensor import Tensor
from lazygrad.nn.module import Module

if TYPE_CHECKING:
    from lazygrad.optim import Optimizer

PathLike = Union[str, os.PathLike]
FORMAT = "lazygrad-checkpoint-1"


class CheckpointError(ValueError):
    """A file that is not a complete safetensors file, or a checkpoint without what was asked."""


def _host(v: Any) -> np.ndarray:
    a = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
    # not np.ascontiguousarray: it turns 0-d arrays into shape (1,)
    return a if a.flags.c_contiguous else a.copy(order="C")


def _write_atomic(arrays: dict[str, np.ndarray], path: PathLike, metadata: dict[str, str] | None) -> None:
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(arrays, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_header(path: PathLike) -> dict[str, Any]:
    """The JSON header of a safetensors file, after checking that the file really is one and
    holds every byte its header promises (raises CheckpointError saying what is wrong)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file ({size} bytes, shorter than the 8-byte header length)")
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise CheckpointError(f"{path}: not a safetensors file, or truncated: its header length says {n} bytes "
                                  f"but only {size - 8} follow")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: not a safetensors file (header is not valid JSON: {e})") from None
    data_bytes = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = int(info["data_offsets"][1])
        except (KeyError, TypeError, IndexError, ValueError):
            raise CheckpointError(f"{path}: not a safetensors file (entry {name!r} has no data_offsets)") from None
        if end > data_bytes:
            raise CheckpointError(f"{path}: truncated: tensor {name!r} needs {end} data bytes, the file has {data_bytes}")
    return header


def _load_arrays(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors.numpy import load_file

    header = read_header(path)
    try:
        arrays = load_file(str(path))
    except Exception as e:  # safetensors raises its own error type for malformed files
        raise CheckpointError(f"{path}: safetensors could not read the file: {e}") from None
    return arrays, dict(header.get("__metadata__") or {})


def _to_tensor(a: np.ndarray) -> Tensor:
    # the stored dtype, not the default conversion (which turns float64 into float32)
    return Tensor(a, dtype=dt.as_dtype(a.dtype))


def save_state_dict(state: Mapping[str, Any] | Module, path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write a state dict (or a module's) to a safetensors file; tensors keep their dtypes."""
    sd = state.state_dict() if isinstance(state, Module) else state
    _write_atomic({k: _host(v) for k, v in sd.items()}, path, dict(metadata) if metadata else None)


def load_arrays(path: PathLike) -> dict[str, np.ndarray]:
    """Read a safetensors file into {name: numpy array} (host memory, stored dtypes)."""
    return _load_arrays(path)[0]


def load_state_dict(path: PathLike) -> dict[str, Tensor]:
    """Read a safetensors file into {name: Tensor} with the stored dtypes (a TypeError names a
    dtype the device lacks, e.g. float16 on PoCL's CPU device: use load_arrays, or load into a
    model, which casts to its parameters' dtypes)."""
    arrays, _ = _load_arrays(path)
    return {k: _to_tensor(a) for k, a in arrays.items()}


def save_checkpoint(path: PathLike, model: Module, optimizer: Optimizer | None = None,
                    metadata: Mapping[str, Any] | None = None) -> None:
    """Save the model's state, the optimizer's state (if given) and JSON-able `metadata`
    (epoch, accuracy, ...) in one safetensors file."""
    arrays = {f"model.{k}": _host(v) for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "metadata": json.dumps(dict(metadata or {}))}
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for i, entry in sd["state"].items():
            for k, v in entry.items():
                if isinstance(v, Tensor):
                    arrays[f"optimizer.{i}.{k}"] = _host(v)
                else:
                    scalars.setdefault(str(i), {})[k] = v
        meta["optimizer"] = json.dumps({"type": type(optimizer).__name__, "param_groups": sd["param_groups"],
                                        "scalars": scalars})
    _write_atomic(arrays, path, meta)


def load_checkpoint(path: PathLike, model: Module, optimizer: Optimizer | None = None,
                    strict: bool = True) -> dict[str, Any]:
    """Load a checkpoint written by save_checkpoint into `model` (and `optimizer`); returns the
    saved metadata. A plain state-dict file (no "model." prefix) loads into the model too."""
    arrays, meta = _load_arrays(path)
    is_checkpoint = meta.get("format") == FORMAT
    if not is_checkpoint:
        if optimizer is not None:
            raise CheckpointError(f"{path}: a plain state dict, it holds no optimizer state")
        model.load_state_dict(arrays, strict=strict)
        return {}
    model_sd = {k[len("model."):]: a for k, a in arrays.items() if k.startswith("model.")}
    other = [k for k in arrays if not k.startswith(("model.", "optimizer."))]
    if strict and other:
        raise ValueError(f"load_checkpoint {path}: unexpected keys {other}")
    model.load_state_dict(model_sd, strict=strict)
    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(f"{path}: the checkpoint was saved without optimizer state")
        info = json.loads(meta["optimizer"])
        if info["type"] != type(optimizer).__name__:
            raise ValueError(f"load_checkpoint {path}: optimizer state is for {info['type']}, "
                             f"not {type(optimizer).__name__}")
        state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in info["scalars"].items()}
        for k, a in arrays.items():
            if k.startswith("optimizer."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = a
        optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    return json.loads(meta.get("metadata", "{}"))
