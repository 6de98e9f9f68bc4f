"""Saving and loading without pickle: tensors in safetensors, everything else in JSON.

Nested state (an optimizer's state_dict, RNG states, trainer counters) is split into a flat
{name: tensor} dict for safetensors and a JSON skeleton whose tensor leaves are references
`{"__tensor__": name}`. Loading reverses it: nothing is ever unpickled.
"""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .errors import GanvaeError
# atomic_write and write_json live in files.py; re-exported here so older imports keep working
from .files import atomic_write, within, write_json  # noqa: F401  (within: its old home)


def split_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Replace every tensor in a nested structure by a reference; collect the tensors."""
    if isinstance(obj, torch.Tensor):
        name = prefix.rstrip(".") or "root"
        tensors[name] = obj.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) for k in obj):
            raise TypeError(f"cannot save dict keys of types {set(type(k) for k in obj)}")
        # JSON keys are strings: remember int keys (optimizer state is keyed by param index)
        return {"__dict__": [[k, split_state(v, tensors, f"{prefix}{k}.")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        out = [split_state(v, tensors, f"{prefix}{i}.") for i, v in enumerate(obj)]
        return {"__tuple__": out} if isinstance(obj, tuple) else out
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot save an object of type {type(obj).__name__} at {prefix!r}")


def join_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of split_state."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__dict__"}:
            return {k: join_state(v, tensors) for k, v in obj["__dict__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(join_state(v, tensors) for v in obj["__tuple__"])
        raise ValueError(f"unexpected keys in saved state: {sorted(obj)}")
    if isinstance(obj, list):
        return [join_state(v, tensors) for v in obj]
    return obj




def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def save_state(path_stem: Path, state: Any) -> None:
    """Write `state` as STEM.safetensors, then STEM.json (which records the tensors' SHA-256).

    Each file is written atomically, and the JSON last: a checkpoint is complete exactly when
    its JSON exists and the checksum in it matches the tensors.
    """
    tensors: dict[str, torch.Tensor] = {}
    skeleton = split_state(state, tensors)
    st = path_stem.with_suffix(".safetensors")
    try:
        atomic_write(st, lambda p: save_file(tensors, str(p)))
        write_json(path_stem.with_suffix(".json"), {"format": "ganvae-state-1", "sha256": sha256_file(st),
                                                    "state": skeleton})
    except OSError as e:
        if not path_stem.with_suffix(".json").exists():  # a half-made new checkpoint: drop its tensors
            st.unlink(missing_ok=True)
        reason = "no space left on device" if e.errno == errno.ENOSPC else str(e)
        raise GanvaeError(f"{path_stem}: could not write the checkpoint ({reason}); "
                          "earlier checkpoints are intact") from None


def load_state(path_stem: Path, device: str | torch.device = "cpu") -> Any:
    """Read a state written by save_state, verifying its checksum first. Never unpickles."""
    st = path_stem.with_suffix(".safetensors")
    try:
        meta = json.loads(path_stem.with_suffix(".json").read_text())
        if not isinstance(meta, dict) or meta.get("format") != "ganvae-state-1":
            raise ValueError("not a ganvae state file")
        if sha256_file(st) != meta["sha256"]:
            raise ValueError("checksum mismatch: the tensors file is damaged")
        tensors = load_file(str(st), device=str(device))
        return join_state(meta["state"], tensors)
    except FileNotFoundError as e:
        raise GanvaeError(f"{e.filename}: missing") from None
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise GanvaeError(f"{path_stem}: damaged or not a ganvae state ({type(e).__name__}: {e})") from None
