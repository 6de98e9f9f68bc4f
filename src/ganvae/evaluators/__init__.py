"""Evaluators: networks trained on the dataset itself, in whose features samples are scored.

- Labelled data gets a classifier; its softmax also gives the classifier score and the mode
  histogram. Unlabelled data gets a self-supervised rotation predictor (Gidaris et al. 2018,
  "Unsupervised Representation Learning by Predicting Image Rotations"); its quality is its
  rotation accuracy on the test split.
- An evaluator is identified by a hash of the training split and the recipe. The package ships
  the Fashion-MNIST classifier (weights/); any other one is trained on first use and cached in
  `$GANVAE_CACHE` (default ~/.cache/ganvae)/evaluators/<id>/. Training is deterministic by seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..data import ImageDataset, to_float
from ..errors import GanvaeError
from ..files import atomic_write, write_json
from .net import EvalNet

SHIPPED = Path(__file__).parent / "weights"
RECIPE_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """How an evaluator is trained; part of its identity."""

    epochs: int = 8
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    shift: int = 2             # random translation of up to this many pixels
    flip: bool = False         # random horizontal flips (fine for clothing, not for digits)
    seed: int = 0
    max_train: int = 60_000    # at most this many training images are used
    precision: str = "bf16"    # autocast while training (deterministic on the CPU too); scoring is fp32
    version: int = RECIPE_VERSION


DEFAULT_RECIPES = {"fashion-mnist": Recipe(epochs=15, flip=True), "mnist": Recipe()}


def cache_root() -> Path:
    return Path(os.environ.get("GANVAE_CACHE") or Path.home() / ".cache" / "ganvae")


def recipe_for(ds: ImageDataset) -> Recipe:
    # Small datasets need more passes to converge; ~100k images seen is plenty for them.
    epochs = 8 if len(ds.train) >= 20_000 else max(8, min(30, math.ceil(100_000 / len(ds.train))))
    return DEFAULT_RECIPES.get(ds.name, Recipe(epochs=epochs))


def data_hash(ds: ImageDataset) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ds.train.x).tobytes())
    if ds.train.y is not None:
        h.update(np.ascontiguousarray(ds.train.y, dtype=np.int64).tobytes())
    return h.hexdigest()


def evaluator_id(ds: ImageDataset, recipe: Recipe) -> str:
    kind = "classifier" if ds.train.y is not None else "rotation"
    h = hashlib.sha256((data_hash(ds) + json.dumps(dataclasses.asdict(recipe), sort_keys=True) + kind).encode())
    stem = ds.name.split(":")[0]
    return f"{stem}-{kind}-{h.hexdigest()[:12]}"


class Evaluator:
    """A trained evaluator net plus what it is (id, kind, accuracy, classes)."""

    def __init__(self, net: EvalNet, meta: dict, device: torch.device | str = "cpu"):
        self.net = net.to(device).eval()
        self.meta = meta
        self.device = torch.device(device)

    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def weights_sha256(self) -> str:
        """A hash of the weights themselves: what cached real-data statistics are keyed by."""
        if not hasattr(self, "_weights_sha256"):
            h = hashlib.sha256()
            for k, v in sorted(self.net.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
            self._weights_sha256 = h.hexdigest()
        return self._weights_sha256

    @property
    def is_classifier(self) -> bool:
        return self.meta["kind"] == "classifier"

    @torch.no_grad()
    def features_and_probs(self, x: np.ndarray | torch.Tensor, batch: int = 1000) -> tuple[np.ndarray, np.ndarray | None]:
        """uint8 images (N, C, H, W) -> features (N, 128) float32 and, for a classifier, softmax (N, K)."""
        feats, probs = [], []
        x = torch.as_tensor(x)
        for i in range(0, len(x), batch):
            xb = to_float(x[i:i + batch].to(self.device))
            f = self.net.features(xb)
            feats.append(f.float().cpu())
            if self.is_classifier:
                probs.append(F.softmax(self.net.head(f).float(), dim=1).cpu())
        return torch.cat(feats).numpy(), (torch.cat(probs).numpy() if probs else None)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        atomic_write(directory / "model.safetensors", lambda p: save_file(state, str(p)))
        write_json(directory / "meta.json", self.meta)

    @classmethod
    def load(cls, directory: Path, device="cpu") -> "Evaluator":
        try:
            meta = json.loads((directory / "meta.json").read_text())
            net = EvalNet(meta["channels"], meta["outputs"])
            net.load_state_dict(load_file(str(directory / "model.safetensors")))
        except Exception as e:  # a damaged cache entry: the caller retrains
            raise GanvaeError(f"{directory}: damaged evaluator ({type(e).__name__}: {e})") from None
        return cls(net, meta, device)


# ------------------------------------------------------------------------------- training

def _augment(x: torch.Tensor, shift: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to `shift` pixels (zero fill) and optional flips. x (B, C, H, W)."""
    b, _, h, w = x.shape
    if shift:
        padded = F.pad(x, (shift, shift, shift, shift), value=-1.0)
        dx = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
        dy = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
        # gather each sample's window: build per-sample index grids
        rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)          # (B, H)
        cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)          # (B, W)
        x = padded[torch.arange(b, device=x.device)[:, None, None, None], torch.arange(x.shape[1], device=x.device)[None, :, None, None],
                   rows[:, None, :, None], cols[:, None, None, :]]
    if flip:
        m = (torch.rand(b, generator=gen) < 0.5).to(x.device)
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    return x


def _rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image at 0/90/180/270 degrees, with the rotation index as the label."""
    xs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    ys = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return xs, ys


def _targets(xb: torch.Tensor, yb: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    return (xb, yb) if yb is not None else _rotations(xb)


@torch.no_grad()
def accuracy(net: EvalNet, x: np.ndarray, y: np.ndarray | None, device, batch: int = 1000) -> float:
    """Test accuracy: of the classes, or (no labels) of the four rotations."""
    net.eval()
    correct = total = 0
    for i in range(0, len(x), batch):
        xb = to_float(torch.from_numpy(x[i:i + batch]).to(device))
        yb = torch.from_numpy(y[i:i + batch]).to(device) if y is not None else None
        xb, yb = _targets(xb, yb)
        correct += int((net(xb).argmax(1) == yb).sum())
        total += len(yb)
    return correct / max(total, 1)


def train_evaluator(ds: ImageDataset, recipe: Recipe, device="cpu",
                    log: Callable[[str], None] = print) -> Evaluator:
    """Train an evaluator on ds.train, deterministically from recipe.seed; scored on ds.test."""
    device = torch.device(device)
    labelled = ds.train.y is not None
    kind = "classifier" if labelled else "rotation"
    outputs = (int(max(ds.train.y.max(), ds.test.y.max())) + 1) if labelled else 4
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    net = EvalNet(ds.shape[0], outputs).to(device)
    n = min(len(ds.train), recipe.max_train)
    x_all = torch.from_numpy(ds.train.x[:n]).to(device)
    y_all = torch.from_numpy(ds.train.y[:n]).to(device) if labelled else None
    bs = min(recipe.batch_size, n)
    steps_per_epoch = max(1, n // bs)
    total = recipe.epochs * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total, pct_start=0.2)
    t0 = time.perf_counter()
    for epoch in range(recipe.epochs):
        net.train()
        perm = torch.randperm(n, generator=gen).to(device)
        running = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * bs:(s + 1) * bs]
            xb = _augment(to_float(x_all[idx]), recipe.shift, recipe.flip, gen)
            xb, yb = _targets(xb, y_all[idx] if labelled else None)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe.precision == "bf16"):
                loss = F.cross_entropy(net(xb).float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
        log(f"evaluator epoch {epoch + 1}/{recipe.epochs}: loss {running / steps_per_epoch:.4f} "
            f"({time.perf_counter() - t0:.0f}s)")
    acc = accuracy(net, ds.test.x, ds.test.y if labelled else None, device)
    meta = {
        "id": evaluator_id(ds, recipe), "kind": kind, "data": ds.name, "data_sha256": data_hash(ds),
        "shape": list(ds.shape), "channels": ds.shape[0], "outputs": outputs,
        "classes": ds.classes if labelled else None,
        "accuracy": round(acc, 5), "accuracy_of": "test-set classes" if labelled else "test-set rotations (4-way)",
        "recipe": dataclasses.asdict(recipe), "train_images": n,
        "train_seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__,
        # bf16 training repeats bit for bit only on the same kind of CPU with the same thread
        # count: recorded so a rebuild can say whether it should match exactly
        "threads": torch.get_num_threads(), "machine": platform.machine(), "cpu": _cpu_name(),
    }
    log(f"evaluator {meta['id']}: {kind}, test accuracy {acc:.4f}")
    return Evaluator(net.eval(), meta, device)


def _cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo), or the platform's word for it."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def get_evaluator(ds: ImageDataset, device="cpu", log: Callable[[str], None] = print,
                  recipe: Recipe | None = None) -> Evaluator:
    """The evaluator for `ds`: shipped, cached, or trained now (and cached)."""
    # On the training images as loaded (a held-out validation split included): the evaluator
    # belongs to the dataset, not to a run's --val-split, so every split setting scores in the
    # same features and the shipped Fashion-MNIST weights keep their id. It never sees test.
    ds = ds.as_loaded()
    recipe = recipe or recipe_for(ds)
    eid = evaluator_id(ds, recipe)
    for d in (SHIPPED / eid, cache_root() / "evaluators" / eid):
        if (d / "meta.json").exists():
            try:
                return Evaluator.load(d, device)
            except GanvaeError as e:
                log(f"warning: {e}; training it again")
    log(f"training the evaluator for {ds.name} (once; cached as {eid})")
    ev = train_evaluator(ds, recipe, device, log)
    ev.save(cache_root() / "evaluators" / eid)
    return ev


__all__ = ["Evaluator", "Recipe", "get_evaluator", "train_evaluator", "evaluator_id", "accuracy"]
