"""Bring your own nets: a user's modules train, are saved by import path and rebuilt."""

import json

import pytest
import torch

import ganvae
from ganvae.cli import main
from ganvae.errors import BadInput
from tests.conftest import DATA
from tests.custom_nets import MLPCritic, MLPEncoder, MLPGenerator

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = 28


def test_a_gan_trains_with_the_users_generator_and_discriminator_and_loads_back(tmp_path):
    run, summary = ganvae.train("dcgan", DATA, tmp_path / "run", steps=3, batch_size=16, progress=False,
                                overrides={"latent": 8},
                                nets={"g": ganvae.net(MLPGenerator, latent=8, hidden=32), "d": ganvae.net(MLPCritic)})
    assert summary["steps"] == 3
    saved = json.loads((run / "config.json").read_text())["model"]["nets"]
    assert saved == {"g": {"class": "tests.custom_nets:MLPGenerator", "kwargs": {"latent": 8, "hidden": 32}},
                     "d": {"class": "tests.custom_nets:MLPCritic", "kwargs": {}}}
    model = ganvae.load(run)
    assert isinstance(model.g.module, MLPGenerator) and isinstance(model.d.module, MLPCritic)
    # the weights are the trained ones (not a fresh init): the same as in the saved file
    from safetensors.torch import load_file

    state = load_file(str(run / "model" / "model.safetensors"))
    assert torch.equal(model.state_dict()["g.module.net.0.weight"], state["g.module.net.0.weight"])
    x = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, SIZE, SIZE) and x.abs().max() <= 1
    assert model.d_features(x).shape == (4, 64)
    # and the command line uses the run like any other
    assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "s.png"), "--device", "cpu"]) == 0
    assert (tmp_path / "s.png").exists()


def test_a_vae_trains_with_the_users_encoder(tmp_path):
    run, _ = ganvae.train("vae", DATA, tmp_path / "run", steps=2, batch_size=16, progress=False,
                          overrides={"latent": 8, "width": 8}, nets={"encoder": ganvae.net(MLPEncoder, out=16)})
    model = ganvae.load(run)
    assert isinstance(model.encoder, MLPEncoder)
    assert model.encode(torch.zeros(3, 1, SIZE, SIZE)).shape == (3, 8)


def test_nets_of_the_wrong_shape_are_refused_with_one_line(tmp_path):
    with pytest.raises(BadInput) as e:   # a VAE's encoder must give mean and log-variance: 2 x latent
        ganvae.train("vae", DATA, tmp_path / "a", steps=1, progress=False, overrides={"latent": 8},
                     nets={"encoder": ganvae.net(MLPEncoder, out=8)})
    assert str(e.value) == ("nets.encoder: tests.custom_nets:MLPEncoder gives (2, 8) for images (2, 1, 28, 28); "
                            "this model needs (2, 16)")
    with pytest.raises(BadInput, match=r"nets.g: tests.custom_nets:MLPGenerator fails on z \(2, 8\): RuntimeError"):
        ganvae.train("dcgan", DATA, tmp_path / "b", steps=1, progress=False, overrides={"latent": 8},
                     nets={"g": ganvae.net(MLPGenerator, latent=4)})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_bad_specs_say_what_to_do(tmp_path):
    def train(preset, nets):
        return ganvae.train(preset, DATA, tmp_path / "x", steps=1, progress=False, nets=nets)

    with pytest.raises(BadInput, match="nets.encoder: gan has no such net to replace .its roles: g, d."):
        train("dcgan", {"encoder": ganvae.net(MLPEncoder, out=8)})
    with pytest.raises(BadInput, match="nets: aae does not take custom nets"):
        train("aae", {"encoder": ganvae.net(MLPEncoder, out=8)})
    with pytest.raises(BadInput, match=r"nets.g: cannot import nowhere.nets:G .No module named 'nowhere'."):
        train("dcgan", {"g": {"class": "nowhere.nets:G", "kwargs": {}}})
    with pytest.raises(BadInput, match="is not an import path"):
        train("dcgan", {"g": {"class": "import os; os.system('x')"}})
    with pytest.raises(BadInput, match="cgan needs the built-in class-conditional nets"):
        train("cgan", {"g": ganvae.net(MLPGenerator, latent=64)})

    class Local(torch.nn.Module):
        pass

    with pytest.raises(BadInput, match="define the class in an importable module"):
        ganvae.net(Local)
    with pytest.raises(BadInput, match="must be JSON values"):
        ganvae.net(MLPGenerator, latent=torch.zeros(1))
    with pytest.raises(BadInput, match="give an nn.Module subclass"):
        ganvae.net(MLPGenerator(8))
