"""A peer for ganvae's VAE: pythae's VAE (PyPI `pythae`, the `bench` extra) trained on the same
nets, data, batch and wall-clock budget, both scored by `ganvae eval --samples`.

    .venv/bin/python benchmarks/pythae_peer.py [--budget 60] [--width 64] [--latent 64]
        [--batch-size 128] [--samples 5000] [--loss mse|bce] [--precision fp32]
        [--ganvae-likelihoods matched,discretized-logistic] [--work-dir DIR] [--out FILE.json]

Install the peer first: `pip install -e '.[bench]'` (or `make bench-peers`, which runs this too).

pythae trains its `VAE` through its own `TrainingPipeline` / `BaseTrainer`, as a pythae user runs
it, with ganvae.nets' Encoder and Decoder wrapped into pythae's BaseEncoder / BaseDecoder and
ganvae's initialisation (dcgan_init). The wrappers feed the nets ganvae's pixel convention
([-1, 1]) and hand pythae its own ([0, 1]), so both toolkits train the very same function:

- pythae `--loss mse` is 0.5 * ||x - x_hat||^2 on [0, 1], a Gaussian with sigma 1 there, which
  is ganvae's `likelihood=gaussian` with `sigma=2` on [-1, 1] (the same objective up to a
  constant); pythae `--loss bce` is ganvae's `likelihood=bernoulli` (soft targets on grey
  pixels). `matched` in --ganvae-likelihoods names that twin; any ganvae likelihood can follow
  (its default, discretized-logistic, is what `ganvae train vae` runs as shipped).
- The optimizer is ganvae's: Adam, lr 1e-3 (`--lr`; pythae's own default is 1e-4).
- Both train on the same images: Fashion-MNIST's train split less ganvae's held-out validation
  split (the 55,000 images `ganvae train` uses).

Each run stops at its first step past `--budget` seconds of training. ganvae's time is its
trainer's own (summary.json: training steps, without logs, sample grids or checkpoints).
pythae's is the wall-clock of its BaseTrainer from the start of its epoch loop to that step,
with whatever the trainer does in between (per-batch `.item()` and progress bar, the model copy
it keeps at each epoch's end); pythae has no way to stop mid-epoch, so a callback raises when
the budget is spent (an epoch of 55,000 images takes longer than a minute on 2 cores) and the
live weights are sampled (pythae would otherwise save its best-epoch copy).

Samples are the decoder's mean image for z ~ N(0, I) (pythae's NormalSampler; `ganvae sample`),
written as uint8 (N, 1, 28, 28) .npz files and scored by `ganvae eval --samples F --data
fashion-mnist` against the test split; FD and precision / recall come from its --json output.
Columns: `budget s` is the training seconds each run actually took (>= --budget by at most one
step); img/s is images trained on over those seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

DATA = "fashion-mnist"
INSTALL_HINT = "pythae is not installed; install the benchmark extra: pip install -e '.[bench]'"

# pythae's reconstruction losses and the ganvae VAE config that optimises the same objective
# (see the module docstring): a Gaussian with sigma 1 on [0, 1] is sigma 2 on [-1, 1].
MATCHED = {"mse": {"likelihood": "gaussian", "sigma": 2.0}, "bce": {"likelihood": "bernoulli"}}


class BudgetSpent(Exception):
    """Raised from inside pythae's training loop: its trainer only stops after num_epochs."""


def training_images():
    """The images `ganvae train vae --data fashion-mnist` trains on: the dataset with ganvae's
    default validation split held out (so pythae sees the same 55,000 images, not 60,000)."""
    from ganvae.data import load_dataset
    from ganvae.data.base import hold_out_val
    from ganvae.trainer import DataConfig

    d = DataConfig(spec=DATA)
    return hold_out_val(load_dataset(d.spec, seed=d.seed), d.val_split, d.seed)


def _autocast(precision: str):
    # pythae's own `amp` switch is torch.autocast("cuda"): on CPU a pythae user wraps the call
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def pythae_nets(width: int, latent: int, loss: str):
    """ganvae's VAE nets as pythae's BaseEncoder / BaseDecoder, speaking [0, 1] to pythae."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    from ganvae.nets import Decoder, Encoder, dcgan_init

    class GanvaeEncoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = Encoder(1, 28, width, out_dim=2 * latent)
            dcgan_init(self.net)

        def forward(self, x):
            # the net was designed for ganvae's [-1, 1] pixels; the posterior in float32 as
            # ganvae's VAE keeps it (it matters under bf16 only)
            mu, logvar = self.net(2 * x - 1).float().chunk(2, dim=1)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class GanvaeDecoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = Decoder(latent, 1, 28, width, out="none")
            dcgan_init(self.net)

        def forward(self, z):
            out = self.net(z).float()
            # bce: the raw output is ganvae's Bernoulli logit; mse: ganvae's Gaussian mean on
            # [-1, 1], moved to pythae's [0, 1] (unclamped, as ganvae trains it)
            recon = torch.sigmoid(out) if loss == "bce" else (out + 1) / 2
            return ModelOutput(reconstruction=recon)

    return GanvaeEncoder(), GanvaeDecoder()


def run_pythae(a, ds, work: Path) -> dict:
    """Train pythae's VAE for the budget through its TrainingPipeline; write its samples."""
    from pythae.models import VAE, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.samplers import NormalSampler
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import ProgressBarCallback, TrainingCallback

    from ganvae.data import to_uint8

    x = torch.from_numpy(ds.train.x).float() / 255           # pythae's convention: [0, 1]
    n = len(x)

    class Budget(TrainingCallback):
        """Times the epoch loop and counts images; stops it when the budget is spent.

        pythae calls on_train_step_end after every batch, but on_train_step_begin only once
        per epoch (its `train_step` is the epoch), so images are counted per batch here."""

        def __init__(self):
            self.t0, self.seconds, self.steps, self.epochs, self.in_epoch = None, 0.0, 0, 0, 0

        def images(self) -> int:
            # the last batch of an epoch is short (no drop_last): a finished epoch is n images
            return self.epochs * n + min(self.in_epoch * a.batch_size, n)

        def on_train_begin(self, training_config, **kwargs):
            self.t0 = time.perf_counter()

        def on_train_step_end(self, training_config, **kwargs):
            self.steps += 1
            self.in_epoch += 1
            self.seconds = time.perf_counter() - self.t0
            if self.seconds >= a.budget:
                raise BudgetSpent

        def on_epoch_end(self, training_config, **kwargs):
            self.epochs, self.in_epoch = self.epochs + 1, 0

    torch.manual_seed(a.seed)                                  # the nets' initial weights
    encoder, decoder = pythae_nets(a.width, a.latent, a.loss)
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=a.latent, reconstruction_loss=a.loss),
                encoder=encoder, decoder=decoder)
    config = BaseTrainerConfig(output_dir=str(work / "pythae"), per_device_train_batch_size=a.batch_size,
                               num_epochs=10**6, learning_rate=a.lr, seed=a.seed, no_cuda=True)
    pipeline = TrainingPipeline(model=model, training_config=config)
    budget = Budget()
    try:
        with _autocast(a.precision):
            pipeline(train_data=x, callbacks=[budget])
    except BudgetSpent:
        # the exception leaves pythae's progress bar open: close it so the terminal stays tidy
        for cb in pipeline.trainer.callback_handler.callbacks:
            if isinstance(cb, ProgressBarCallback) and cb.train_progress_bar is not None:
                cb.train_progress_bar.close()
    print(file=sys.stderr)

    torch.manual_seed(a.seed)                                  # NormalSampler draws from torch's RNG
    with torch.no_grad():                                      # pythae samples with autograd on
        recon = NormalSampler(model).sample(num_samples=a.samples, batch_size=500)
    npz = work / "pythae-samples.npz"
    np.savez_compressed(npz, x=to_uint8(2 * recon - 1).numpy())    # ganvae's [-1, 1] -> uint8
    likelihood = {"mse": "mse (gaussian σ=1 on [0,1])", "bce": "bce (bernoulli, soft targets)"}[a.loss]
    return {"peer": f"pythae {_version('pythae')} VAE", "likelihood": likelihood, "npz": npz,
            "train_seconds": budget.seconds, "steps": budget.steps, "images": budget.images(),
            "images_per_second": budget.images() / max(budget.seconds, 1e-9)}


def ganvae_cli() -> list[str]:
    """The `ganvae` command of this interpreter's environment."""
    exe = Path(sys.executable).with_name("ganvae")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from ganvae.cli import main; main()"]


def run_ganvae(a, ds, work: Path, likelihood: str) -> dict:
    """`ganvae train vae` (its Python twin) for the budget, then `ganvae sample` into an npz."""
    import ganvae

    overrides = {"width": a.width, "latent": a.latent}
    overrides.update(MATCHED[a.loss] if likelihood == "matched" else {"likelihood": likelihood})
    name = overrides["likelihood"] + (f"-sigma{overrides['sigma']:g}" if "sigma" in overrides else "")
    run_dir = work / f"ganvae-{name}"
    shutil.rmtree(run_dir, ignore_errors=True)     # this script's own run of an earlier call
    run_dir, summary = ganvae.train("vae", DATA, run_dir, overrides=overrides,
                                    budget=f"{a.budget}s", batch_size=a.batch_size, precision=a.precision,
                                    seed=a.seed, device="cpu", dataset=ds)
    npz = work / f"ganvae-{name}-samples.npz"
    subprocess.run([*ganvae_cli(), "sample", str(run_dir), "-n", str(a.samples), "--seed", str(a.seed),
                    "-o", str(npz)], check=True, stdout=subprocess.DEVNULL)
    label = overrides["likelihood"] + (f" σ={overrides['sigma']:g} (= pythae {a.loss})" if "sigma" in overrides
                                       else f" (= pythae {a.loss})" if likelihood == "matched" else "")
    return {"peer": f"ganvae {ganvae.__version__} vae", "likelihood": label, "npz": npz,
            "train_seconds": summary["train_seconds"], "steps": summary["steps"], "images": summary["images_seen"],
            "images_per_second": summary["images_per_second"]}


EVAL = ["eval", "--samples", "{npz}", "--data", DATA, "--device", "cpu", "--json", "{json}"]


def score(npz: Path) -> dict:
    """`ganvae eval --samples` on the npz; its --json result's metrics."""
    out = npz.with_suffix(".eval.json")
    cmd = [*ganvae_cli(), *(s.format(npz=npz, json=out) for s in EVAL)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.strip()}")
    return json.loads(out.read_text())["metrics"]


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def main() -> None:
    from ganvae.hardware import cpu_name
    from ganvae.models.vae import VAEConfig as GanvaeVAEConfig

    vae_defaults = GanvaeVAEConfig()     # the latent size and lr `ganvae train vae` runs with
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=60.0, help="training seconds of each run")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--latent", type=int, default=vae_defaults.latent, help="ganvae's VAE default")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--samples", type=int, default=5000, help="samples scored per run")
    p.add_argument("--loss", choices=sorted(MATCHED), default="mse", help="pythae's reconstruction loss "
                   "(mse is its default)")
    p.add_argument("--lr", type=float, default=vae_defaults.lr, help="pythae's Adam lr (ganvae's VAE default)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--ganvae-likelihoods", default="matched,discretized-logistic",
                   help="one ganvae run per likelihood; `matched` is pythae's --loss twin")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=None, help="keep runs and samples here (default: a temp dir)")
    p.add_argument("--out", type=Path, default=None, help="also write the results here as JSON")
    a = p.parse_args()
    if importlib.util.find_spec("pythae") is None:
        print(INSTALL_HINT, file=sys.stderr)
        sys.exit(2)
    if not math.isfinite(a.budget) or a.budget <= 0:
        p.error(f"--budget {a.budget}: must be a positive number of seconds")

    work = a.work_dir or Path(tempfile.mkdtemp(prefix="pythae-peer-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        ds = training_images()
        rows = [run_pythae(a, ds, work)]
        rows += [run_ganvae(a, ds, work, lik) for lik in a.ganvae_likelihoods.split(",") if lik]
        for row in rows:
            m = score(row["npz"])
            row.update(fd=m["fd"], precision=m.get("precision"), recall=m.get("recall"))
            row["npz"] = str(row["npz"]) if a.work_dir else None
    finally:
        if a.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)

    command = " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    machine = (f"{cpu_name()}, torch {torch.__version__} with {torch.get_num_threads()} threads, "
               f"pythae {_version('pythae')}, ganvae {_version('ganvae')}")
    scoring = " ".join(["ganvae", *(s.format(npz="SAMPLES.npz", json="EVAL.json") for s in EVAL)])
    print(f"command: {command}")
    print(f"machine: {machine}")
    print(f"{DATA}, {len(ds.train)} training images, width {a.width}, latent {a.latent}, batch {a.batch_size}, "
          f"{a.precision}, budget {a.budget:g}s each, {a.samples} samples scored by `{scoring}`")
    print("| peer | likelihood | budget s | img/s | FD | precision | recall |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        pr = "-" if r["precision"] is None else f"{r['precision']:.3f}"
        rc = "-" if r["recall"] is None else f"{r['recall']:.3f}"
        print(f"| {r['peer']} | {r['likelihood']} | {r['train_seconds']:.1f} | {r['images_per_second']:.0f} | "
              f"{r['fd']:.2f} | {pr} | {rc} |")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"command": command, "machine": machine, "scoring": scoring,
                                     "options": {k: str(v) if isinstance(v, Path) else v
                                                 for k, v in vars(a).items()},
                                     "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
