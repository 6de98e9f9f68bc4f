"""Bring your own nets: a user's nn.Module classes in place of the built-in ones.

A model config's `nets` maps a role to an import path and constructor arguments,

    {"g": {"class": "mypkg.nets:Generator", "kwargs": {"latent": 64, "width": 48}}}

which is what config.json stores: loading a run (`ganvae.load(run)`) imports the class and
calls it again with those arguments, then loads the saved weights; nothing is pickled. From
Python, `ganvae.net(Generator, latent=64, width=48)` writes that entry for an importable class:

    ganvae.train("dcgan", "fashion-mnist", steps=1000,
                 nets={"g": ganvae.net(Generator, latent=64), "d": ganvae.net(Critic)})

Roles: a GAN's `g` (z (B, latent) -> images (B, C, H, W) in [-1, 1]) and `d` (images -> one
logit per image, (B,) or (B, 1)); an AE's or VAE's `encoder` (images -> (B, latent), or
(B, 2 latent) for a VAE's mean and log-variance) and `decoder` (z -> the decoder's raw output,
(B, C, H, W), or (B, 2C, H, W) for the VAE's discretized likelihoods' means and log-scales).
Each net is checked on a dummy batch of 2 when the model is built, with one-line errors.

Loading a run with custom nets imports the modules its config.json names: trust such a run as
you would trust running its code.
"""

from __future__ import annotations

import importlib
import json
import re

import torch
from torch import nn

from .errors import BadInput

PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def net(cls: type, **kwargs) -> dict:
    """The `nets` entry for class `cls` built with `kwargs` (JSON values, saved in config.json)."""
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise BadInput(f"ganvae.net({cls!r}): give an nn.Module subclass (the class, not an instance)")
    path = f"{cls.__module__}:{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise BadInput(f"ganvae.net({cls.__qualname__}): define the class in an importable module (not __main__ "
                       "or inside a function), so a saved run can rebuild it")
    spec = {"class": path, "kwargs": dict(kwargs)}
    check_spec("net", spec)
    return spec


def check_spec(role: str, spec) -> None:
    if not isinstance(spec, dict) or set(spec) - {"class", "kwargs"} or "class" not in spec:
        raise BadInput(f"nets.{role}: give {{'class': 'module.path:Class', 'kwargs': {{...}}}} (ganvae.net(...) "
                       "writes it)")
    if not isinstance(spec["class"], str) or not PATH.fullmatch(spec["class"]):
        raise BadInput(f"nets.{role}: class {spec['class']!r} is not an import path like mypkg.nets:Generator")
    try:
        json.dumps(spec.get("kwargs", {}))
    except (TypeError, ValueError):
        raise BadInput(f"nets.{role}: its constructor arguments must be JSON values (numbers, strings, lists, "
                       "dicts), so config.json can hold them") from None


def check_roles(nets: dict, allowed: tuple[str, ...], model: str) -> None:
    for role, spec in nets.items():
        if role not in allowed:
            roles = ", ".join(allowed) if allowed else "none"
            raise BadInput(f"nets.{role}: {model} has no such net to replace (its roles: {roles})")
        check_spec(role, spec)


def build(role: str, spec: dict) -> nn.Module:
    """Import spec's class and construct it with its kwargs."""
    module_name, _, qualname = spec["class"].partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise BadInput(f"nets.{role}: cannot import {spec['class']} ({e}); install or put on PYTHONPATH the "
                       "code that defines it") from None
    if not isinstance(obj, type) or not issubclass(obj, nn.Module):
        raise BadInput(f"nets.{role}: {spec['class']} is not an nn.Module class")
    try:
        return obj(**spec.get("kwargs", {}))
    except TypeError as e:
        raise BadInput(f"nets.{role}: {spec['class']}(**{spec.get('kwargs', {})}) failed: {e}") from None


def check_output(role: str, spec: dict, module: nn.Module, inputs: torch.Tensor, want: tuple[int, ...],
                 what: str) -> None:
    """Run `module` on a dummy batch and compare the output's shape with `want`."""
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(inputs)
    except Exception as e:   # the user's code: any failure becomes the one-line message
        raise BadInput(f"nets.{role}: {spec['class']} fails on {what} {tuple(inputs.shape)}: "
                       f"{type(e).__name__}: {e}") from None
    finally:
        module.train(was)
    got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
    ok = torch.is_tensor(out) and (tuple(out.shape) == want or (want[1:] == () and tuple(out.shape) == (want[0], 1)))
    if not ok:
        raise BadInput(f"nets.{role}: {spec['class']} gives {got} for {what} {tuple(inputs.shape)}; this model "
                       f"needs {want}")


class Generator(nn.Module):
    """A user's generator as a GAN's G: (z, class weights) -> images; unconditional only."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, z: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(z)


class Discriminator(nn.Module):
    """A user's discriminator as a GAN's D: images -> (B,) logits."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(x).reshape(len(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self.module, "features"):
            raise BadInput("nets.d: this discriminator has no features(x) method, which the latent-space probes "
                           "of a GAN use; add one returning (B, F) activations")
        return self.module.features(x).flatten(1)


def gan_nets(c) -> tuple[nn.Module | None, nn.Module | None]:
    """(G, D) of a GAN config's `nets`, each checked on a dummy batch (None where not given)."""
    check_roles(c.nets, ("g", "d"), "gan")
    if c.nets and c.conditional:
        raise BadInput("nets: custom nets make an unconditional GAN; cgan needs the built-in class-conditional nets")
    if "d" in c.nets and c.freeze_d:
        raise BadInput("freeze_d: Freeze-D needs the built-in discriminator's blocks; not with a custom nets.d")
    g = d = None
    if "g" in c.nets:
        g = Generator(build("g", c.nets["g"]))
        check_output("g", c.nets["g"], g, torch.zeros(2, c.latent), (2, c.channels, c.size, c.size), "z")
    if "d" in c.nets:
        d = Discriminator(build("d", c.nets["d"]))
        check_output("d", c.nets["d"], d.module, torch.zeros(2, c.channels, c.size, c.size), (2,), "images")
    return g, d


def autoencoder_nets(c, code_dim: int, out_channels: int, model: str) -> tuple[nn.Module | None, nn.Module | None]:
    """(encoder, decoder) of an AE / VAE config's `nets`, checked: the encoder maps images to
    code_dim numbers, the decoder z (B, latent) to (B, out_channels, size, size)."""
    check_roles(c.nets, ("encoder", "decoder"), model)
    if c.nets and getattr(c, "conditional", False):
        raise BadInput("nets: custom nets make an unconditional model; cvae needs the built-in nets")
    enc = dec = None
    if "encoder" in c.nets:
        enc = build("encoder", c.nets["encoder"])
        check_output("encoder", c.nets["encoder"], enc, torch.zeros(2, c.channels, c.size, c.size), (2, code_dim),
                     "images")
    if "decoder" in c.nets:
        dec = build("decoder", c.nets["decoder"])
        check_output("decoder", c.nets["decoder"], dec, torch.zeros(2, c.latent), (2, out_channels, c.size, c.size),
                     "z")
    return enc, dec
