"""BOON's checkpoints in neuraloperator's format, loadable with ``weights_only=True``.

neuraloperator's models (``BaseModel``) save ``{name}_state_dict.pt`` and
``{name}_metadata.pkl`` (their constructor's arguments); its ``Trainer`` calls
``model.save_checkpoint(folder, name)`` for ``save_every`` and ``model.load_state_dict(
torch.load(folder / f"{name}_state_dict.pt"))`` for ``resume_from_dir``. BOON writes the same
two files, with two differences: the state dict holds tensors only (neuraloperator's adds a
``_metadata`` entry of Python objects, which PyTorch's default ``weights_only`` load refuses),
and the metadata is plain data (strings, numbers, lists, tensors): the wrapped model's class
and constructor arguments, functions and classes by their import path, BOON's conditions and
options. Rebuilding imports classes and functions from ``torch`` and ``neuralop`` only.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch

from .._io import atomic_path
from ..conditions import Dirichlet, Neumann, Periodic

_TRUSTED = ("torch", "neuralop")
FORMAT = "physguard-boon-1"


def encode(value):
    """Plain data for ``torch.load(weights_only=True)``: functions and classes by path."""
    if isinstance(value, (str, int, float, bool, type(None), torch.Tensor)):
        return value
    if isinstance(value, (list, tuple)):
        return {"sequence": [encode(v) for v in value], "tuple": isinstance(value, tuple)}
    if isinstance(value, dict):
        return {"mapping": {str(k): encode(v) for k, v in value.items()}}
    module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if module and name and "<" not in name:
        return {"import": f"{module}:{name}"}
    raise TypeError(f"cannot store {value!r} ({type(value).__name__}) in a checkpoint's "
                    "metadata")


def decode(value):
    if isinstance(value, dict) and "sequence" in value:
        items = [decode(v) for v in value["sequence"]]
        return tuple(items) if value["tuple"] else items
    if isinstance(value, dict) and "mapping" in value:
        return {k: decode(v) for k, v in value["mapping"].items()}
    if isinstance(value, dict) and "import" in value:
        return load_object(value["import"])
    return value


def load_object(path: str):
    """``module:qualname`` from torch or neuraloperator (nothing else is imported)."""
    module, _, name = path.partition(":")
    if module.split(".")[0] not in _TRUSTED:
        raise ValueError(f"the checkpoint names {path}; physguard rebuilds classes and "
                         f"functions from {', '.join(_TRUSTED)} only: build the model "
                         "yourself, wrap it in BOON and call load_checkpoint")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def condition_record(bc) -> dict | None:
    if bc is None:
        return None
    if isinstance(bc, Periodic):
        return {"kind": "periodic"}
    if isinstance(bc, Dirichlet):
        return {"kind": "dirichlet", "value": torch.as_tensor(bc.value).detach().cpu()}
    return {"kind": "neumann", "value": torch.as_tensor(bc.flux).detach().cpu(),
            "order": bc.order}


def condition_from(record: dict | None):
    if record is None:
        return None
    if record["kind"] == "periodic":
        return Periodic()
    value = record["value"]
    value = float(value) if value.dim() == 0 else value
    return Dirichlet(value) if record["kind"] == "dirichlet" else \
        Neumann(value, int(record["order"]))


def save(folder: str | os.PathLike, name: str, state: dict, metadata: dict) -> None:
    """Write ``{name}_state_dict.pt`` and ``{name}_metadata.pkl`` atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / f"{name}_state_dict.pt") as tmp:
        torch.save(state, tmp)
    with atomic_path(folder / f"{name}_metadata.pkl") as tmp:
        torch.save({"format": FORMAT, **metadata}, tmp)


def load(path: Path, map_location=None):
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for a damaged or unsafe file
        raise ValueError(f"{path} is not a checkpoint physguard can load safely "
                         f"(weights_only=True): {err}") from err
