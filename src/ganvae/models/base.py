"""The contract every model obeys, so the trainer, the metrics and the report treat all alike.

- `Config`: a dataclass at the top of the model's file; `Model(config)` builds the model.
  `channels` and `size` are filled from the data by whoever builds the model.
- `optimizers()` -> {name: optimizer}, created once.
- `train_step(x, step) -> {scalar name: 0-d tensor}`: every update for one batch of real
  images x (B, C, H, W) in [-1, 1], as explicit phases inside the model. The values are
  detached tensors, so the trainer can average them without a device sync every step.
- `sample(n, generator) -> (n, C, H, W)` in [-1, 1]; `decode(z)` maps latents (n, latent)
  to images the same way (the generator / decoder), for interpolations and traversals.
- Encoder models: `encode(x) -> z (B, latent)` and `reconstruct(x)`; VAEs `log_likelihood(x, k)`.
- `save_pretrained(dir)` / `GenerativeModel.from_pretrained(dir)`: config.json (with the
  registry name) + model.safetensors; loading rebuilds the model without unpickling anything.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..checkpoint import atomic_write, write_json
from ..config import from_dict
from ..errors import BadInput, GanvaeError


@dataclasses.dataclass
class ModelConfig:
    """Fields every model config has; families add their own."""

    channels: int = 1      # filled from the data
    size: int = 28         # filled from the data
    latent: int = 64       # latent dimension
    width: int = 64        # base channel count of the nets (64 = DCGAN)

    def validate(self) -> None:
        if self.latent < 1:
            raise BadInput(f"latent={self.latent}: must be at least 1")
        if self.width < 1:
            raise BadInput(f"width={self.width}: must be at least 1")


class GenerativeModel(nn.Module):
    name: ClassVar[str] = "?"          # set by registry.register_model
    Config: ClassVar[type] = ModelConfig
    has_encoder: ClassVar[bool] = False
    has_likelihood: ClassVar[bool] = False
    gaussian_latent: ClassVar[bool] = True   # prior N(0, I): interpolate along great circles

    def __init__(self, config):
        super().__init__()
        self.config = config
        self._optimizers: dict[str, torch.optim.Optimizer] | None = None

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

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def fit_prior(self, x: torch.Tensor) -> None:
        """Called once after training with (a sample of) the training images; a no-op by default."""

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
    def from_pretrained(directory: str | Path, device: str | torch.device = "cpu") -> "GenerativeModel":
        from ..registry import MODELS, _ensure_loaded

        _ensure_loaded()
        d = Path(directory)
        try:
            meta = json.loads((d / "config.json").read_text())
        except FileNotFoundError:
            raise BadInput(f"{d}: no config.json; expected a directory written by save_pretrained") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadInput(f"{d / 'config.json'}: not valid JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("model") not in MODELS:
            raise BadInput(f"{d / 'config.json'}: unknown model {meta.get('model') if isinstance(meta, dict) else meta!r}")
        cls = MODELS[meta["model"]]
        cfg = from_dict(cls.Config, meta.get("config", {}), where=str(d / "config.json"))
        model = cls(cfg)
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
        return model.to(device).eval()
