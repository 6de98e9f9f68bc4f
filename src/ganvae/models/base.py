"""The contract every model obeys, so the trainer, the metrics and the report treat all alike.

- `Config`: a dataclass at the top of the model's file; `Model(config)` builds the model.
  `channels` and `size` are filled from the data by whoever builds the model.
- `optimizers()` -> {name: optimizer}, created once.
- `train_step(x, step) -> {scalar name: 0-d tensor}`: every update for one batch of real
  images x (B, C, H, W) in [-1, 1], as explicit phases inside the model. The values are
  detached tensors, so the trainer can average them without a device sync every step.
- `sample(n, generator, *, seed=None) -> (n, C, H, W)` in [-1, 1]; a seed (or a generator,
  not both) makes the draw repeatable. `decode(z)` maps latents (n, latent) to images the
  same way (the generator / decoder), for interpolations and traversals.
  `decode` is differentiable in z (callers that need no gradient use torch.no_grad), so tasks
  can search the latent space: completion optimises z against the known pixels.
- `latent_nll(z) -> (B,)`: -log p(z) under the model's latent prior, up to a constant
  (||z||^2 / 2 for N(0, I), the fitted density's for a fitted prior); differentiable.
- Models with an image discriminator also have `realism(x, z) -> (B,)`: its logit that x is
  real (z is used by joint discriminators, as BiGAN's), in eval mode, differentiable in x.
  Those without an encoder also have `d_features(x) -> (B, F)`: the discriminator's
  penultimate activations, what the latent-space probes use for a GAN.
- Class-conditional models (`conditional`, e.g. cgan) get `train_step((x, y), step)` with
  integer labels y (B,), and `sample(n, generator, labels=None, *, seed=None)` /
  `decode(z, labels=None)`: labels (n,) pick the classes; sample without them draws classes
  uniformly, decode without them uses the uniform mixture of the class embeddings.
- Encoder models: `encode(x) -> z (B, latent)` and `reconstruct(x)`; VAEs `log_likelihood(x, k)`.
- Translation models (models/translation.py: pix2pix, cyclegan, unit) set `translation` to
  "paired" or "unpaired": their `train_step((a, b), step)` gets a batch of input-domain images a
  and one of target-domain images b, and `translate(x, direction)` replaces sample / decode.
- `save_pretrained(dir)` / `GenerativeModel.from_pretrained(dir)`: config.json (with the
  registry name) + model.safetensors; loading rebuilds the model without unpickling anything.
- `updates_per_step()` -> {optimizer name: updates per train_step}, and `batches_per_step`: how
  many batches one step consumes (a GAN with n_critic = 5 takes five: one per D update, as
  StudioGAN and mimicry count a step as one generator update). A model whose updates depend on
  the run (a VAE-GAN's D rests on some steps) also counts those that ran: `updates_done()`.

Mixed precision is the model's business, because only the model knows which parts are network
forwards and which are losses (the trainer calls `set_precision` once):
- network forwards run inside `with self.autocast():` (bf16 / fp16 matmuls and convolutions);
- losses, reductions and penalties are computed in float32 outside it (inputs cast `.float()`);
- `self.backward(loss)` and `self.step(opt)` go through a GradScaler under fp16 (loss scaling,
  so small gradients do not underflow to zero; a step whose gradients overflowed is skipped),
  and `self.end_step()` updates the scale once per train_step; the optimizer step itself always
  runs outside autocast, on float32 master weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import from_dict
from ..errors import BadInput, GanvaeError
from ..files import atomic_write, write_json


@dataclasses.dataclass
class ModelConfig:
    """Fields every model config has; families add their own."""

    # keys of earlier versions and their names now: config.replace maps them (with a note for
    # --set and --config; silently for a saved run's config.json). One name across families:
    # adam_beta1 / adam_beta2 (beta alone is the VAE's KL weight)
    renamed: ClassVar[dict[str, str]] = {"beta1": "adam_beta1", "beta2": "adam_beta2"}

    channels: int = 1      # filled from the data
    size: int = 28         # filled from the data
    latent: int = 64       # latent dimension
    width: int = 64        # base channel count of the nets (64 = DCGAN)
    # the nets: DCGAN's (Radford et al. 2016) or the residual ones of WGAN-GP and SNGAN
    # (nets.ResNetDecoder / ResNetDiscriminator / ResNetEncoder), both sized from the image
    arch: str = "dcgan"
    # bring your own nets: {role: {"class": "module.path:Class", "kwargs": {...}}} in place of
    # the built-in ones (custom.py; the roles a family takes are its `custom_roles`)
    nets: dict = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        if self.arch not in ("dcgan", "resnet"):
            raise BadInput(f"arch={self.arch!r}: choose dcgan or resnet")
        if self.latent < 1:
            raise BadInput(f"latent={self.latent}: must be at least 1")
        if self.width < 1:
            raise BadInput(f"width={self.width}: must be at least 1")


@dataclasses.dataclass
class ClassConditionalConfig:
    """The class-conditional fields of a model config (a mixin): `conditional` asks for a model
    of p(x | y) trained on (image, label) pairs; `num_classes` is filled from the data."""

    conditional: bool = False
    num_classes: int = 0         # K, filled from the data's labels when conditional

    def validate_conditional(self) -> None:
        if self.conditional and self.num_classes < 2:
            raise BadInput(f"conditional=true with num_classes={self.num_classes}: a class-conditional model needs "
                           "labelled data with at least 2 classes (fashion-mnist, shapes, or folder:PATH with one "
                           "subfolder per class)")


def seeded_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
    """The generator `sample` draws from: the one given, or for `seed` a fresh CPU generator
    seeded with it. On the CPU, as evaluation.generate's, so that one seed gives the same images
    whatever device the model is on (every draw is made on the generator's device, then moved)."""
    if seed is None:
        return generator
    if generator is not None:
        raise BadInput("sample: give either seed or generator, not both")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise BadInput(f"sample: seed={seed!r}: expected an integer")
    return torch.Generator().manual_seed(seed)


class GenerativeModel(nn.Module):
    name: ClassVar[str] = "?"          # set by registry.register_model
    Config: ClassVar[type] = ModelConfig
    has_encoder: ClassVar[bool] = False
    has_likelihood: ClassVar[bool] = False
    gaussian_latent: ClassVar[bool] = True   # prior N(0, I): interpolate along great circles
    # For a hybrid of the two families, the registry names of its parents (one autoencoder, one
    # GAN): the report sets the hybrid's scores beside theirs when they are in the same comparison.
    parents: ClassVar[tuple[str, ...]] = ()
    # "" for generative models; "paired" or "unpaired" for translation models (see above)
    translation: ClassVar[str] = ""
    # Trains under DDP (torchrun, --nproc): its train_step runs each net it updates through
    # `self.ddp(name)` and draws its noise for the global batch (parallel.py).
    ddp_ready: ClassVar[bool] = False
    # ... and averages its gradients itself (average_gradients, after its own autograd.grad or
    # backward(inputs=...)) instead of through DDP wrappers: no net is wrapped.
    averages_own_gradients: ClassVar[bool] = False
    # the nets a user may replace with their own modules (ModelConfig.nets, custom.py)
    custom_roles: ClassVar[tuple[str, ...]] = ()

    def likelihood_space(self, binarize: str = "none") -> str:
        """The data space this model's likelihood numbers are probabilities in: "8-bit" (a
        discretized density of the pixels), "binary" (Bernoulli on binarized data) or "invalid"
        (not a probability of the data it is scored on: never ranked). Evaluation names every
        likelihood metric by it, asking the model rather than knowing any model's internals;
        `binarize` is the run's data.binarize. A model without a likelihood: "invalid"."""
        return "invalid"

    def __init__(self, config):
        super().__init__()
        if getattr(config, "nets", None) and not self.custom_roles:
            raise BadInput(f"nets: {self.name} does not take custom nets (gan, vae and ae presets do); use its "
                           "built-in ones")
        self.config = config
        self._optimizers: dict[str, torch.optim.Optimizer] | None = None
        self._amp_dtype: torch.dtype | None = None      # None: float32 throughout
        self._amp_device = "cpu"
        self.scaler: torch.amp.GradScaler | None = None  # fp16 only
        # Under DDP, each trained net's DistributedDataParallel wrapper by attribute name; a
        # plain dict, so the wrappers stay out of state_dict, checkpoints and saved models.
        self._ddp: dict[str, nn.Module] = {}

    # ---- data parallelism (see parallel.py)
    def trained_nets(self) -> list[str]:
        """Attribute names of the child modules an optimizer updates (the nets DDP wraps)."""
        trained = {id(p) for o in self.optimizers().values() for g in o.param_groups for p in g["params"]}
        return [name for name, m in self.named_children()
                if any(id(p) in trained for p in m.parameters())]

    def parallelize(self, wrap) -> None:
        """wrap(module) -> its DDP wrapper, for every trained net; None drops the wrappers.

        A trained parameter that belongs to no child net (the VAE's learnt sigma) is not in any
        wrapper: its gradient is averaged over the ranks by a hook once it is accumulated.
        """
        for handle in getattr(self, "_ddp_hooks", []):
            handle.remove()
        self._ddp_hooks = []
        self._ddp = {}
        if wrap is None:
            return
        from ..parallel import all_sum_, broadcast_, world

        if self.averages_own_gradients:
            # no wrapper to broadcast rank 0's weights at its construction, as DDP's does
            broadcast_([p.data for p in self.parameters()])
            return
        self._ddp = {name: wrap(getattr(self, name)) for name in self.trained_nets()}
        wrapped = {id(p) for m in self._ddp.values() for p in m.parameters()}
        n = world().size

        def average(p: torch.Tensor) -> None:   # the ranks' mean gradient, as DDP gives the rest
            all_sum_(p.grad).div_(n)

        for o in self.optimizers().values():
            for g in o.param_groups:
                for p in g["params"]:
                    if id(p) not in wrapped:
                        self._ddp_hooks.append(p.register_post_accumulate_grad_hook(average))

    def average_gradients(self, params: list[torch.Tensor]) -> None:
        """Under DDP, for a model that averages its own gradients: each of `params`' gradients
        becomes the ranks' mean, as a DDP wrapper's backward would leave it (a no-op on one
        process). Call it between the backward and the optimizer step, on every rank."""
        from ..parallel import all_mean_

        all_mean_([p.grad for p in params if p.grad is not None])

    def ddp(self, name: str) -> nn.Module:
        """The net `name` for a training forward whose backward updates that net: its DDP
        wrapper under data parallelism (which all-reduces the gradients in that backward), else
        the net itself. A forward whose backward does not update the net (D judging fakes in the
        generator's phase) calls the net directly: a DDP wrapper would wait for gradients that
        never come."""
        return self._ddp[name] if name in self._ddp else getattr(self, name)

    # ---- precision (see the module docstring)
    def set_precision(self, precision: str, device_type: str) -> None:
        """fp32, bf16 or fp16 on a device type ("cpu", "cuda"); fp16 gets a GradScaler."""
        self._amp_device = device_type
        self._amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.scaler = torch.amp.GradScaler(device_type) if precision == "fp16" else None

    def autocast(self):
        """The context for network forwards: autocast to the run's dtype, or nothing in fp32."""
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self._amp_device, dtype=self._amp_dtype)

    def backward(self, loss: torch.Tensor, inputs: list[torch.Tensor] | None = None) -> None:
        """loss.backward(), scaled under fp16; `inputs` restricts which leaves get gradients."""
        self.scale(loss).backward(inputs=inputs)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss times the fp16 loss scale (unchanged otherwise), for torch.autograd.grad."""
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def unscale(self, opt: torch.optim.Optimizer) -> None:
        """Divide opt's gradients by the loss scale before anything reads them (e.g. clipping)."""
        if self.scaler is not None:
            self.scaler.unscale_(opt)

    def step(self, opt: torch.optim.Optimizer) -> None:
        """opt.step() outside autocast; under fp16 skipped when the gradients overflowed."""
        with torch.autocast(self._amp_device, enabled=False):
            if self.scaler is not None:
                self.scaler.step(opt)
            else:
                opt.step()

    def end_step(self) -> None:
        """Once per train_step, after every optimizer step: adapt the fp16 loss scale."""
        if self.scaler is not None:
            self.scaler.update()

    # ---- update accounting
    @property
    def batches_per_step(self) -> int:
        """Batches one train_step consumes; the trainer hands it that many at once."""
        return 1

    def updates_per_step(self) -> dict[str, float]:
        """{optimizer name: updates per train_step (on average)}: what a step costs, so that
        budgets and reports can show unequal update counts."""
        return {name: 1.0 for name in self.optimizers()}

    def updates_done(self) -> dict[str, int] | None:
        """{optimizer name: optimizer steps run so far}, kept across checkpoints and resume, for a
        model whose updates per step are not fixed; None (the default): they are, and
        updates_per_step times the steps is the count."""
        return None

    def optimizer_steps(self) -> dict[str, int] | None:
        """{optimizer name: steps it has taken}, read from the optimizers' own per-parameter step
        counters (Adam, AdamW, RMSprop keep one): optimizer state, so checkpoints, resume and
        rollback carry it, --init-from (fresh optimizers) starts it at 0, and under fp16 a step
        the loss scaler skipped is not counted. None when an optimizer keeps no counter (plain
        SGD): then nothing can be read. A model's `updates_done` can return this."""
        out = {}
        for name, opt in self.optimizers().items():
            steps = [int(st["step"]) for st in opt.state.values() if "step" in st]
            if not steps and opt.state:
                return None
            out[name] = max(steps, default=0)
        return out

    # ---- the contract
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The named optimizers, created on first use (after the model is on its device)."""
        if self._optimizers is None:
            self._optimizers = self.make_optimizers()
        return self._optimizers

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def latent_nll(self, z: torch.Tensor) -> torch.Tensor:
        """-log N(z; 0, I) per code (B,), without its constant: ||z||^2 / 2."""
        return 0.5 * z.float().pow(2).sum(1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, seed: int | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [-1, 1]; `seed` (or a torch.Generator, not both) makes the
        draw repeatable: `model.sample(16, seed=0)` gives the same images every time.
        Subclasses start with `generator = seeded_generator(seed, generator)`."""
        raise NotImplementedError

    def fit_prior(self, x: torch.Tensor) -> None:
        """Called once after training with (a sample of) the training images; a no-op by default."""

    @property
    def conditional(self) -> bool:
        """Class-conditional (see ClassConditionalConfig): train_step((x, y), step) gets labels
        y (B,) with the images, and sample / decode take `labels`."""
        return bool(getattr(self.config, "conditional", False))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---- saving and loading
    def save_pretrained(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write(d / "model.safetensors", lambda p: save_file(state, str(p)))
        write_json(d / "config.json", {"model": self.name, "config": dataclasses.asdict(self.config)})
        return d

    @staticmethod
    def from_config(family: str, config: dict, where: str) -> "GenerativeModel":
        """A freshly initialised model of registry family `family` from its config as a dict
        (what config.json files hold); `where` names the file in errors."""
        from ..registry import MODELS, ensure_loaded

        ensure_loaded()
        cls = MODELS[family]
        return cls(from_dict(cls.Config, config, where=where))

    @staticmethod
    def from_pretrained(directory: str | Path, device: str | torch.device = "cpu") -> "GenerativeModel":
        from ..registry import MODELS, ensure_loaded

        ensure_loaded()
        d = Path(directory)
        try:
            meta = json.loads((d / "config.json").read_text())
        except FileNotFoundError:
            raise BadInput(f"{d}: no config.json; expected a directory written by save_pretrained") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadInput(f"{d / 'config.json'}: not valid JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("model") not in MODELS:
            raise BadInput(f"{d / 'config.json'}: unknown model {meta.get('model') if isinstance(meta, dict) else meta!r}")
        model = GenerativeModel.from_config(meta["model"], meta.get("config", {}), where=str(d / "config.json"))
        try:
            state = load_file(str(d / "model.safetensors"), device="cpu")
        except FileNotFoundError:
            raise BadInput(f"{d}: no model.safetensors") from None
        except Exception as e:
            raise GanvaeError(f"{d / 'model.safetensors'}: damaged weights ({e})") from None
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise GanvaeError(f"{d / 'model.safetensors'}: weights do not match the config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        return for_inference(model, device)


def for_inference(model: "GenerativeModel", device: str | torch.device = "cpu") -> "GenerativeModel":
    """A loaded model as every command uses it: on `device`, in eval mode, and on a CPU in NHWC
    memory order, as the trainer trains there. oneDNN's convolutions sample, encode and
    reconstruct 1.2-1.5x faster in it at 64x64 RGB (BENCHMARKS.md, "Performance II"); only
    4-d weights change layout, and the outputs are the trained model's own."""
    model = model.to(device).eval()
    if model.device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 (hex) of a model's state: every tensor's name, dtype, shape and bytes in name
    order, independent of memory layout and device. Files made with a model (compressed codes)
    record it, so a different model's decoder is refused instead of decoding garbage."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def has_fitted_prior(model) -> bool:
    """Whether the model fits a latent density to its codes after training (ae, vaegan,
    prior=gmm, ...): its samples depend on which images that density was fitted to."""
    return type(model).fit_prior is not GenerativeModel.fit_prior and getattr(model, "_prior_kind", "") != "normal"
