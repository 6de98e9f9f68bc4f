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
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from safetensors.torch import load_file, save_file

from ..data import ImageDataset, to_float
from ..errors import GanvaeError
from ..files import atomic_write, write_json
from ..hardware import cpu_name
from .net import EvalNet

SHIPPED = Path(__file__).parent / "weights"
RECIPE_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """How an evaluator is trained; part of its identity."""

    epochs: int = 8            # the most passes over the training images
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    shift: int = 2             # random translation of up to this many pixels
    flip: bool = False         # random horizontal flips (fine for clothing, not for digits)
    seed: int = 0
    max_train: int = 60_000    # at most this many training images are used
    precision: str = "bf16"    # autocast while training (deterministic on the CPU too); scoring is fp32
    version: int = RECIPE_VERSION
    # Added later: they enter an evaluator's identity only where they differ from these
    # defaults (see `_identity`), so evaluators built before them, the shipped one included,
    # keep their ids and caches.
    budget_images: int = 0     # > 0: passes = min(epochs, ceil(budget_images / images)), a schedule sized to the data
    holdout: float = 0.0       # fraction of the training images held out to stop early on
    patience: int = 0          # stop after this many passes without a better held-out accuracy; 0 = never
    one_rotation: bool = False  # rotation task: one random rotation per image and step, not all four
    input_pool: int = 1        # average the input down by this factor first (EvalNet.pool)
    channels_last: bool = False  # train in NHWC memory order: ~1.2x faster oneDNN steps here
    # > 0: exactly this many optimizer steps of `batch_size` images each, drawn from back-to-back
    # random permutations (no remainder dropped, every image seen as often as any other, +-1),
    # whatever the number of images: classifiers trained on sets of different sizes then get the
    # same steps *and* the same images seen (the augment task's equal budget). Overrides passes.
    steps: int = 0

    def passes(self, n: int) -> int:
        if self.steps > 0:
            return math.ceil(self.steps / _steps_per_pass(self, n))
        if self.budget_images > 0:
            return max(1, min(self.epochs, math.ceil(self.budget_images / max(n, 1))))
        return self.epochs


_LATER_FIELDS = ("budget_images", "holdout", "patience", "one_rotation", "input_pool", "channels_last", "steps")


def _steps_per_pass(recipe: Recipe, n: int) -> int:
    """Optimizer steps in one pass over n images: n // batch (the remainder dropped, as the
    shipped evaluator was trained), or with a fixed step count ceil(n / batch) (none dropped)."""
    bs = min(recipe.batch_size, n)
    return max(1, math.ceil(n / bs) if recipe.steps > 0 else n // bs)


class _IndexStream:
    """Batches of indices into n images from back-to-back random permutations, so a batch may
    span two of them and no image is left out at a pass's end."""

    def __init__(self, n: int, generator: torch.Generator, device):
        self.n, self.generator, self.device = n, generator, device
        self.buffer = torch.empty(0, dtype=torch.int64)

    def take(self, k: int) -> torch.Tensor:
        while len(self.buffer) < k:
            self.buffer = torch.cat([self.buffer, torch.randperm(self.n, generator=self.generator)])
        idx, self.buffer = self.buffer[:k], self.buffer[k:]
        return idx.to(self.device)


def _identity(recipe: Recipe) -> dict:
    d = dataclasses.asdict(recipe)
    for name in _LATER_FIELDS:
        if d[name] == Recipe.__dataclass_fields__[name].default:
            del d[name]
    return d


DEFAULT_RECIPES = {"fashion-mnist": Recipe(epochs=15, flip=True), "mnist": Recipe()}

# What any other dataset gets (issue 11: "<= 60 s on this machine for up to 10,000 images").
# - ~50k images seen (of 28x28; fewer of larger ones), at most 30 passes: plenty for a 10-class or 4-rotation task on small
#   images (the shipped evaluator reaches 93% in 15 passes of 60k), and a 2,700-image folder
#   no longer costs 30 full passes of four rotations each;
# - early stopping on 10% of the training images (the best held-out weights are kept);
# - one random rotation per image and step for unlabelled data: the same task and expected
#   gradient at a quarter of the cost;
# - images above 32 pixels averaged down to ~32 (64 -> 32, 96 -> 32);
# - channels-last memory order (~1.2x per step here);
# - float32: on this project's CPU bfloat16 convolutions run at half the float32 rate
#   (BENCHMARKS.md), and the evaluator must be the same function on every machine.
NEW_DATA = Recipe(epochs=30, budget_images=50_000, holdout=0.1, patience=3, one_rotation=True,
                  precision="fp32", channels_last=True)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_root() -> Path:
    return Path(os.environ.get("GANVAE_CACHE") or Path.home() / ".cache" / "ganvae")


def recipe_for(ds: ImageDataset) -> Recipe:
    if ds.name in DEFAULT_RECIPES:
        return DEFAULT_RECIPES[ds.name]
    pool = max(1, min(ds.shape[1:]) // 32)
    # The images-seen budget is for 28x28 inputs; larger (pooled) inputs get proportionally
    # fewer, so that the compute, and the time, stays about the same.
    pixels = (ds.shape[1] // pool) * (ds.shape[2] // pool)
    budget = min(NEW_DATA.budget_images, 1000 * round(NEW_DATA.budget_images * 28 * 28 / pixels / 1000))
    return dataclasses.replace(NEW_DATA, input_pool=pool, budget_images=max(budget, 1000))


def data_hash(ds: ImageDataset) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ds.train.x).tobytes())
    if ds.train.y is not None:
        h.update(np.ascontiguousarray(ds.train.y, dtype=np.int64).tobytes())
    return h.hexdigest()


def evaluator_id(ds: ImageDataset, recipe: Recipe) -> str:
    kind = "classifier" if ds.train.y is not None else "rotation"
    h = hashlib.sha256((data_hash(ds) + json.dumps(_identity(recipe), sort_keys=True) + kind).encode())
    stem = ds.name.split(":")[0]
    return f"{stem}-{kind}-{h.hexdigest()[:12]}"


class Evaluator:
    """A trained evaluator net plus what it is (id, kind, accuracy, classes)."""

    def __init__(self, net: EvalNet, meta: dict, device: torch.device | str = "cpu"):
        self.net = net.to(device).eval()
        self.meta = meta
        self.device = torch.device(device)
        self._fast: nn.Module | None = None

    def _features_net(self) -> nn.Module:
        """`net.features` for scoring, ~1.4x faster on CPU and the same function to float
        rounding (tested): each batch norm folded into the convolution before it, channels-last
        activations (oneDNN's max-pooling and convolutions both run faster in NHWC)."""
        if self._fast is None:
            layers, body = [], list(self.net.body)
            i = 0
            while i < len(body):
                if isinstance(body[i], nn.Conv2d) and i + 1 < len(body) and isinstance(body[i + 1], nn.BatchNorm2d):
                    layers.append(fuse_conv_bn_eval(body[i], body[i + 1]))
                    i += 2
                else:
                    layers.append(body[i])
                    i += 1
            fast = nn.Sequential(self.net.pool, *layers).to(memory_format=torch.channels_last).eval()
            self._fast = fast.requires_grad_(False)
        return self._fast

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
        from .. import progress

        feats, probs = [], []
        x = torch.as_tensor(x)
        with progress.bar(len(x), "evaluator features") as bar:
            for i in range(0, len(x), batch):
                xb = to_float(x[i:i + batch].to(self.device)).contiguous(memory_format=torch.channels_last)
                f = self._features_net()(xb)
                feats.append(f.float().cpu())
                if self.is_classifier:
                    probs.append(F.softmax(self.net.head(f).float(), dim=1).cpu())
                bar.update(len(xb))
        return torch.cat(feats).numpy(), (torch.cat(probs).numpy() if probs else None)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        atomic_write(directory / "model.safetensors", lambda p: save_file(state, str(p)))
        # the weights file's checksum, checked on every load: a damaged cache entry is retrained,
        # never used (a flipped bit in a float still loads as a valid safetensors file)
        self.meta["file_sha256"] = file_sha256(directory / "model.safetensors")
        write_json(directory / "meta.json", self.meta)

    @classmethod
    def load(cls, directory: Path, device="cpu") -> "Evaluator":
        try:
            meta = json.loads((directory / "meta.json").read_text())
            want = meta.get("file_sha256")
            if want is not None and file_sha256(directory / "model.safetensors") != want:
                raise ValueError("model.safetensors does not match the checksum in meta.json")
            net = EvalNet(meta["channels"], meta["outputs"], input_pool=meta.get("recipe", {}).get("input_pool", 1))
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


def _one_rotation(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image at one random multiple of 90 degrees, with that index as the label."""
    ys = torch.randint(0, 4, (len(x),), generator=gen).to(x.device)
    xs = x.clone()
    for k in range(1, 4):
        m = ys == k
        if m.any():
            xs[m] = torch.rot90(x[m], k, dims=(2, 3))
    return xs, ys


@torch.no_grad()
def _holdout_accuracy(net: EvalNet, x: torch.Tensor, y: torch.Tensor | None, seed: int) -> float:
    """Accuracy on held-out float images (already pooled), in train-time memory order; unlabelled
    images are each scored at one seeded rotation (a quarter of the cost of all four)."""
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    correct = total = 0
    for i in range(0, len(x), 1000):
        xb = x[i:i + 1000]
        xb, yb = (xb, y[i:i + 1000]) if y is not None else _one_rotation(xb, gen)
        logits = net.head(net.body(xb.contiguous(memory_format=torch.channels_last)))
        correct += int((logits.argmax(1) == yb).sum())
        total += len(yb)
    return correct / max(total, 1)


def _targets(xb: torch.Tensor, yb: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    return (xb, yb) if yb is not None else _rotations(xb)


@torch.no_grad()
@torch.no_grad()
def accuracy(net: EvalNet, x: np.ndarray, y: np.ndarray | None, device, batch: int = 1000) -> float:
    """Test accuracy: of the classes, or (no labels) of the four rotations. Runs the net in NHWC
    order (it is left so), 1.5x faster on a CPU than NCHW with autograd (10,000 Fashion-MNIST
    test images: 6.6 s instead of 10.2 here)."""
    net.eval().to(memory_format=torch.channels_last)
    correct = total = 0
    for i in range(0, len(x), batch):
        xb = to_float(torch.from_numpy(x[i:i + batch]).to(device)).contiguous(memory_format=torch.channels_last)
        yb = torch.from_numpy(y[i:i + batch]).to(device) if y is not None else None
        xb, yb = _targets(xb, yb)
        correct += int((net(xb).argmax(1) == yb).sum())
        total += len(yb)
    return correct / max(total, 1)


def train_evaluator(ds: ImageDataset, recipe: Recipe, device="cpu",
                    log: Callable[[str], None] = print, progress: bool | None = None,
                    desc: str = "evaluator") -> Evaluator:
    """Train an evaluator on ds.train, deterministically from recipe.seed; scored on ds.test.

    With `recipe.holdout` a seeded part of the training images is kept out and scored after
    every pass; the best pass's weights are kept and training stops after `recipe.patience`
    passes without a better held-out accuracy. `progress`: a progress bar on stderr (default:
    when stderr is a terminal).
    """
    import sys

    from tqdm.auto import tqdm

    device = torch.device(device)
    labelled = ds.train.y is not None
    kind = "classifier" if labelled else "rotation"
    outputs = (int(max(ds.train.y.max(), ds.test.y.max())) + 1) if labelled else 4
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    net = EvalNet(ds.shape[0], outputs, input_pool=recipe.input_pool).to(device)
    n_all = min(len(ds.train), recipe.max_train)
    order = np.arange(n_all)
    n_hold = int(round(recipe.holdout * n_all)) if recipe.holdout > 0 else 0
    if n_hold:
        order = np.random.default_rng(recipe.seed).permutation(n_all)
    train_idx, hold_idx = np.sort(order[n_hold:]), np.sort(order[:n_hold])
    n = len(train_idx)
    x_all = torch.from_numpy(ds.train.x[train_idx]).to(device)
    if recipe.input_pool > 1:
        # Average the training images down once, up front, and train the body on them: the same
        # function as net.pool inside the loop, without paying for it (and for augmenting at full
        # size) on every pass. Shifts then move by whole pooled pixels.
        x_all = torch.cat([net.pool(to_float(c)) for c in x_all.split(1024)])
    y_all = torch.from_numpy(ds.train.y[train_idx]).to(device) if labelled else None
    hold_x = net.pool(to_float(torch.from_numpy(ds.train.x[hold_idx]).to(device)))
    hold_y = torch.from_numpy(ds.train.y[hold_idx]).to(device) if labelled else None
    bs = min(recipe.batch_size, n)
    steps_per_epoch = _steps_per_pass(recipe, n)
    passes = recipe.passes(n)
    total = recipe.steps if recipe.steps > 0 else passes * steps_per_epoch
    stream = _IndexStream(n, gen, device) if recipe.steps > 0 else None
    steps_done = images_done = 0
    memory = torch.channels_last if recipe.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total, pct_start=0.2)
    bar = tqdm(total=total, unit="step", desc=desc, dynamic_ncols=True, leave=False, file=sys.stderr,
               disable=not (sys.stderr.isatty() if progress is None else progress))
    best_acc, best_state, best_pass, stale = -1.0, None, 0, 0
    # The recipe's bf16 where the device runs it natively; a CPU without (no AVX-512 BF16 / AMX)
    # would emulate every convolution 20-50x slower, so it trains in fp32 and says so in the
    # meta. The id stays the recipe's: bf16 training already differs bit-wise between CPU
    # kinds, and cached statistics are keyed by the weights' hash, never by the id alone.
    from ..hardware import cpu_has_bf16

    bf16 = recipe.precision == "bf16" and (device.type == "cuda" or cpu_has_bf16())
    t0 = time.perf_counter()
    for epoch in range(passes):
        net.train()
        if stream is None:
            perm = torch.randperm(n, generator=gen).to(device)
            n_steps = steps_per_epoch
        else:   # the last pass of a fixed step count may be a partial one
            n_steps = min(steps_per_epoch, total - epoch * steps_per_epoch)
        running = torch.zeros((), device=device)   # summed on the device: no sync per step
        for s in range(n_steps):
            idx = perm[s * bs:(s + 1) * bs] if stream is None else stream.take(bs)
            xb = x_all[idx]
            xb = _augment(xb if xb.is_floating_point() else to_float(xb), recipe.shift, recipe.flip, gen)
            xb = xb.contiguous(memory_format=memory)
            if labelled:
                yb = y_all[idx]
            elif recipe.one_rotation:
                xb, yb = _one_rotation(xb, gen)
            else:
                xb, yb = _rotations(xb)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                # x_all is already pooled (net.pool is the identity when there is no pooling)
                logits = net.head(net.dropout(net.body(xb)))
                loss = F.cross_entropy(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.detach()
            steps_done += 1
            images_done += len(idx)
            bar.update()
        line = f"evaluator pass {epoch + 1}/{passes}: loss {float(running) / n_steps:.4f}"
        if n_hold:
            acc = _holdout_accuracy(net, hold_x, hold_y, recipe.seed)
            line += f", held-out accuracy {acc:.4f}"
            bar.set_postfix(held_out=f"{acc:.3f}")
            if acc > best_acc:
                best_acc, best_pass, stale = acc, epoch + 1, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
        log(f"{line} ({time.perf_counter() - t0:.0f}s)")
        if n_hold and recipe.patience and stale >= recipe.patience:
            log(f"evaluator: no better held-out accuracy for {stale} passes; keeping pass {best_pass}")
            break
        if n_hold and recipe.patience and best_acc >= 1.0 and epoch + 1 < passes:
            # no later pass can be kept (only a higher accuracy replaces the best), so waiting
            # out the patience would train passes that are thrown away (~30 s at 64x64 RGB)
            log(f"evaluator: held-out accuracy 1.0000 cannot improve; keeping pass {best_pass}")
            break
    bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    acc = accuracy(net, ds.test.x, ds.test.y if labelled else None, device)
    meta = {
        "id": evaluator_id(ds, recipe), "kind": kind, "data": ds.name, "data_sha256": data_hash(ds),
        "shape": list(ds.shape), "channels": ds.shape[0], "outputs": outputs,
        "classes": ds.classes if labelled else None,
        "accuracy": round(acc, 5), "accuracy_of": "test-set classes" if labelled else "test-set rotations (4-way)",
        "recipe": dataclasses.asdict(recipe), "train_images": n, "steps": steps_done, "images_seen": images_done,
        "train_seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__,
        # bf16 training repeats bit for bit only on the same kind of CPU with the same thread
        # count: recorded so a rebuild can say whether it should match exactly
        "threads": torch.get_num_threads(), "machine": platform.machine(), "cpu": cpu_name(),
        "trained_precision": "bf16" if bf16 else "fp32",
    }
    if n_hold:
        meta.update(holdout_images=n_hold, holdout_accuracy=round(best_acc, 5), best_pass=best_pass)
    log(f"evaluator {meta['id']}: {kind}, test accuracy {acc:.4f} ({meta['train_seconds']:.0f}s)")
    return Evaluator(net.to(memory_format=torch.contiguous_format).eval(), meta, device)


def get_evaluator(ds: ImageDataset, device="cpu", log: Callable[[str], None] = print,
                  recipe: Recipe | None = None) -> Evaluator:
    """The evaluator for `ds`: shipped, cached, or trained now (and cached)."""
    # On the training images as loaded (a held-out validation split included): the evaluator
    # belongs to the dataset, not to a run's --val-split, so every split setting scores in the
    # same features and the shipped Fashion-MNIST weights keep their id. It never sees test.
    ds = ds.as_loaded()
    if ds.info.get("target_data"):  # translation data whose targets are another dataset's images
        ds = dataclasses.replace(ds, name=ds.info["target_data"])
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
