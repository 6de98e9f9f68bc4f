"""The yardstick for ganvae's training speed: a plain PyTorch loop written the way a typical
user writes one (TensorDataset + DataLoader, autocast around the whole step), on the same
DCGAN nets and batch, measured side by side with `ganvae train` in one run; at 28x28 grey by
default, at the sizes users bring with --size 64 --channels 3 (Fashion-MNIST resized, in colour;
pix2pix on edges2fashion at that size).

    .venv/bin/python benchmarks/plain_loop.py [--models dcgan,vae,pix2pix] [--precision fp32,bf16]
        [--steps 150] [--batch-size 128] [--repeats 2] [--size 28] [--channels 1] [--no-pythae]

With the `bench` extra installed (`make bench-peers`) the vae rows also time pythae's VAE on
the same nets and batch, in the same run.

Both take their nets from ganvae.nets (so only the loop differs) and train on Fashion-MNIST.
Each (model, precision) runs the plain loop and ganvae alternately, `--repeats` times each, and
the table gives the best img/s of each (the machine's noise only ever slows a run down).
ganvae's rate is its trainer's own (summary.json: training time, without checkpoints or logs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

WARMUP = 10


def fashion_mnist_tensor(size: int = 28, channels: int = 1) -> torch.Tensor:
    """Training images as float32 in [-1, 1], (60000, C, S, S): what a user's loader holds."""
    from ganvae.data import load_dataset

    x = torch.from_numpy(load_dataset("fashion-mnist", size=size, channels=channels).train.x).float()
    return x / 127.5 - 1


def edges_tensors(size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """edges2fashion's training pairs as float32 in [-1, 1]: edges (N, 1, S, S), images (N, C, S, S)."""
    from ganvae.data import load_dataset

    ds = load_dataset("task:edges2fashion", size=size, channels=channels)
    return (torch.from_numpy(ds.train.a).float() / 127.5 - 1, torch.from_numpy(ds.train.x).float() / 127.5 - 1)


def _autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def _run(x: torch.Tensor | tuple, step, steps: int, batch: int) -> float:
    """Epochs of a shuffling DataLoader through `step(*tensors) -> progress text` (x: one tensor,
    or aligned tensors such as (inputs, targets)); img/s after the warm-up steps, with a
    progress line as a user's loop prints one."""
    loader = DataLoader(TensorDataset(*(x if isinstance(x, tuple) else (x,))), batch_size=batch, shuffle=True,
                        drop_last=True)
    done, t0 = 0, None
    while done < steps + WARMUP:
        for tensors in loader:
            if done == WARMUP:
                t0 = time.perf_counter()
            print(f"\r{done} {step(*tensors)}", end="", flush=True, file=sys.stderr)
            done += 1
            if done >= steps + WARMUP:
                break
    print("\r", end="", file=sys.stderr)
    return steps * batch / (time.perf_counter() - t0)


def plain_dcgan(x: torch.Tensor, precision: str, steps: int, batch: int) -> float:
    from ganvae.nets import Decoder, Discriminator, dcgan_init

    torch.manual_seed(0)
    c, s = x.shape[1], x.shape[-1]
    g, d = Decoder(64, c, s, 64, out="tanh"), Discriminator(c, s, 64)
    dcgan_init(g)
    dcgan_init(d)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(real: torch.Tensor) -> str:
        with _autocast(precision):
            z = torch.randn(batch, 64)
            fake = g(z)
            loss_d = F.binary_cross_entropy_with_logits(d(real), torch.ones(batch)) + \
                F.binary_cross_entropy_with_logits(d(fake.detach()), torch.zeros(batch))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        with _autocast(precision):
            loss_g = F.binary_cross_entropy_with_logits(d(fake), torch.ones(batch))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return f"d={loss_d.item():.3f} g={loss_g.item():.3f}"      # the usual .item() every step

    return _run(x, step, steps, batch)


def plain_vae(x: torch.Tensor, precision: str, steps: int, batch: int) -> float:
    """A VAE with ganvae's default likelihood (discretized logistic) written inline."""
    from ganvae.models.vae import discretized_logistic_nll
    from ganvae.nets import Decoder, Encoder, dcgan_init

    torch.manual_seed(0)
    c, s = x.shape[1], x.shape[-1]
    enc, dec = Encoder(c, s, 64, out_dim=128), Decoder(64, 2 * c, s, 64, out="none")
    dcgan_init(enc)
    dcgan_init(dec)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)

    def step(real: torch.Tensor) -> str:
        with _autocast(precision):
            mu, logvar = enc(real).chunk(2, 1)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            mean, log_scale = dec(z).chunk(2, 1)
            recon = discretized_logistic_nll(mean, log_scale.clamp(min=-7), real).mean()
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
            loss = recon + kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        return f"loss={loss.item():.1f}"

    return _run(x, step, steps, batch)


def plain_pix2pix(x: tuple[torch.Tensor, torch.Tensor], precision: str, steps: int, batch: int) -> float:
    """pix2pix as its paper states it, inline: the U-Net, a PatchGAN on (input, output) pairs,
    the non-saturating cGAN loss + 100 * L1, Adam 2e-4 (0.5, 0.999)."""
    from ganvae.nets import dcgan_init
    from ganvae.translation_nets import PatchDiscriminator, UNet

    torch.manual_seed(0)
    ca, c, s = x[0].shape[1], x[1].shape[1], x[1].shape[-1]
    g, d = UNet(ca, c, s, 64, norm="batch", dropout_layers=3, bottom=2), PatchDiscriminator(ca + c, 64, n_layers=1)
    dcgan_init(g)
    dcgan_init(d)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(a: torch.Tensor, b: torch.Tensor) -> str:
        with _autocast(precision):
            fake = g(a)
            real_logits, fake_logits = d(torch.cat([a, b], 1)), d(torch.cat([a, fake.detach()], 1))
            loss_d = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
                F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        with _autocast(precision):
            logits = d(torch.cat([a, fake], 1))
            loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)) + \
                100 * (fake.float() - b).abs().mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return f"d={loss_d.item():.3f} g={loss_g.item():.3f}"

    return _run(x, step, steps, batch)


def ganvae_rate(model: str, precision: str, steps: int, batch: int, size: int = 28, channels: int = 1) -> float:
    import json
    from pathlib import Path

    import ganvae

    with tempfile.TemporaryDirectory() as tmp:
        # the warm-up steps are inside ganvae's count too: its rate covers every step it ran
        data = "task:edges2fashion" if model == "pix2pix" else "fashion-mnist"
        run, summary = ganvae.train(model, data, Path(tmp) / "run", steps=steps + WARMUP, data_size=size,
                                    data_channels=channels,
                                    batch_size=batch, precision=precision, progress=False, device="cpu",
                                    log_every=50, sample_every=10**9, checkpoint_every=10**9,
                                    prior_images=100)
        return json.loads((run / "summary.json").read_text())["images_per_second"]


PLAIN = {"dcgan": plain_dcgan, "vae": plain_vae, "pix2pix": plain_pix2pix}


def pythae_rate(precision: str, steps: int, batch: int) -> float | None:
    """pythae's VAE (the `bench` extra) on the same nets and batch, trained by its own pipeline
    for about as long as the other loops run; None where pythae is not installed. Its rate
    includes its trainer's per-batch work, as the others' include theirs."""
    import argparse as _argparse
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("pythae") is None:
        return None
    sys.path.insert(0, str(Path(__file__).parent))
    from pythae_peer import run_pythae, training_images

    from ganvae.models.vae import VAEConfig

    a = _argparse.Namespace(budget=steps * batch / 800.0, width=64, latent=VAEConfig.latent, batch_size=batch,
                            samples=100, loss="mse", lr=VAEConfig.lr, precision=precision, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        return run_pythae(a, training_images(), Path(tmp))["images_per_second"]


def flops_per_image(model: str, batch: int, size: int = 28, channels: int = 1) -> float:
    """FLOPs of one ganvae training step per image (forward and backward convolutions and matrix
    products, as FlopCounterMode counts them); the plain loop runs the same nets and passes."""
    from ganvae.data import load_dataset, to_float
    from ganvae.hardware import count_flops
    from ganvae.trainer import build

    ds = load_dataset("task:edges2fashion" if model == "pix2pix" else "fashion-mnist", size=size, channels=channels)
    net, _ = build(model, ds)
    net.train()
    net.optimizers()
    n = batch * net.batches_per_step
    x = to_float(torch.from_numpy(ds.train.x[:n]))
    if model == "pix2pix":   # its batch is (inputs, targets)
        x = (to_float(torch.from_numpy(ds.train.a[:n])), x)
    return count_flops(lambda: net.train_step(x, 1)) / n   # step 1: no diagnostics step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="dcgan,vae")
    p.add_argument("--precision", default="fp32,bf16")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--size", type=int, default=28, help="image side: 28 (Fashion-MNIST's), 32 or 64")
    p.add_argument("--channels", type=int, default=1, help="1 (grey) or 3 (RGB)")
    p.add_argument("--no-pythae", action="store_true", help="skip the pythae column even if it is installed")
    a = p.parse_args()
    x = fashion_mnist_tensor(a.size, a.channels)
    pairs = edges_tensors(a.size, a.channels) if "pix2pix" in a.models.split(",") else None
    rows = []
    for model in a.models.split(","):
        for prec in a.precision.split(","):
            plain, ours = [], []
            for _ in range(a.repeats):
                plain.append(PLAIN[model](pairs if model == "pix2pix" else x, prec, a.steps, a.batch_size))
                ours.append(ganvae_rate(model, prec, a.steps, a.batch_size, a.size, a.channels))
            peer = None
            if model == "vae" and not a.no_pythae and (a.size, a.channels) == (28, 1):   # pythae: its VAE at 28 grey
                rates = [pythae_rate(prec, a.steps, a.batch_size) for _ in range(a.repeats)]
                peer = max(rates) if None not in rates else None
            rows.append((model, prec, max(plain), max(ours), peer))
    from ganvae.hardware import conv_peak_gflops, machine_line

    peak = {"fp32": conv_peak_gflops(torch.float32), "bf16": conv_peak_gflops(torch.bfloat16)}
    flops = {m: flops_per_image(m, a.batch_size, a.size, a.channels) for m in a.models.split(",")}
    print(f"{machine_line()}, {a.size}x{a.size}x{a.channels}, batch {a.batch_size}, {a.steps} steps after {WARMUP} "
          f"warm-up, best of {a.repeats}")
    print(f"conv peak here: {peak['fp32']:.0f} GFLOP/s fp32, {peak['bf16']:.0f} bf16 (ganvae.hardware.conv_peak_gflops)")
    print("| model | precision | plain loop img/s | pythae img/s | ganvae img/s | ganvae / plain | MFLOP / image "
          "| ganvae GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model, prec, pl, ou, peer in rows:
        gf = flops[model] * ou / 1e9
        pk = peak.get(prec, peak["fp32"])
        print(f"| {model} | {prec} | {pl:.0f} | {'–' if peer is None else f'{peer:.0f}'} | {ou:.0f} | "
              f"{ou / pl:.2f}x | {flops[model] / 1e6:.0f} | {gf:.0f} | {gf / pk:.0%} |")


if __name__ == "__main__":
    main()
