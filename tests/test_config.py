"""Typed config: --set overrides, config files, validation. Nothing is executed."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from ganvae.config import load_file, parse_set, replace
from ganvae.errors import BadInput
from ganvae.trainer import TrainConfig, parse_budget


@dataclass
class Inner:
    lr: float = 1e-3
    name: Literal["a", "b"] = "a"


@dataclass
class Outer:
    steps: int | None = None
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=Inner)


def test_typed_overrides():
    o = replace(Outer(), {"steps": "10", "flag": "true", "sizes": "3,4", "inner.lr": "2e-4", "inner.name": "b"})
    assert o.steps == 10 and o.flag is True and o.sizes == (3, 4)
    assert o.inner.lr == 2e-4 and o.inner.name == "b"
    assert replace(o, {"steps": "none"}).steps is None


@pytest.mark.parametrize("key,value,msg", [
    ("nope", "1", "unknown key 'nope'"),
    ("inner.nope", "1", "unknown key 'nope'"),
    ("steps", "ten", "expected an integer"),
    ("flag", "maybe", "expected true or false"),
    ("inner.lr", "nan", "finite"),
    ("inner.name", "c", "choose one of a, b"),
    ("steps.x", "1", "has no sub-keys"),
])
def test_bad_overrides(key, value, msg):
    with pytest.raises(BadInput, match=msg):
        replace(Outer(), {key: value})


def test_parse_set():
    assert parse_set(["a=1", "b.c = x=y"]) == {"a": "1", "b.c": "x=y"}
    with pytest.raises(BadInput, match="expected KEY=VALUE"):
        parse_set(["novalue"])


def test_yaml_toml_json_files(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  beta: 4\ntrain:\n  steps: 10\n")
    (tmp_path / "c.toml").write_text("[model]\nbeta = 4\n[train]\nsteps = 10\n")
    (tmp_path / "c.json").write_text('{"model": {"beta": 4}, "train": {"steps": 10}}')
    for name in ("c.yaml", "c.toml", "c.json"):
        assert load_file(tmp_path / name) == {"model.beta": 4, "train.steps": 10}


def test_yaml_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "c.yaml").write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(BadInput, match="not valid"):
        load_file(tmp_path / "c.yaml")
    assert not marker.exists()


def test_bad_files(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        load_file(tmp_path / "absent.yaml")
    (tmp_path / "l.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(BadInput, match="mapping"):
        load_file(tmp_path / "l.yaml")


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("5m", 300), ("1.5h", 5400), ("120", 120)])
def test_budget(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("over,msg", [
    ({"steps": "-1"}, "must be positive"),
    ({"budget": "soon"}, "--budget"),
    ({"batch_size": "0"}, "at least 1"),
    ({"device": "tpu"}, "--device"),
    ({"precision": "fp8"}, "choose one of"),
])
def test_train_config_validation(over, msg):
    with pytest.raises(BadInput, match=msg):
        replace(TrainConfig(), over)


@pytest.mark.parametrize("preset", ["dcgan", "bigan", "vae", "ae", "aae", "vaegan", "pix2pix"])
def test_lr_sets_every_networks_rate_in_every_family(preset):
    import dataclasses

    from ganvae.data import load_dataset
    from ganvae.trainer import build

    data = "task:lowres@shapes:n=64,n_test=8" if preset == "pix2pix" else "shapes:n=64,n_test=8"
    ds = load_dataset(data)
    _, cfg = build(preset, ds, {"lr": "0.0005", "width": 4, "latent": 4} if preset != "pix2pix" else
                   {"lr": "0.0005", "width": 4})
    rates = {k: v for k, v in dataclasses.asdict(cfg).items() if k in ("lr", "lr_g", "lr_d", "lr_e")}
    assert rates and set(rates.values()) == {0.0005}, rates
    if "lr_d" in rates:   # a refinement wins over lr
        _, cfg = build(preset, ds, {"lr": "0.0005", "lr_d": "0.0001", "width": 4} |
                       ({} if preset == "pix2pix" else {"latent": 4}))
        assert cfg.lr_d == 0.0001


@pytest.mark.parametrize("preset", ["dcgan", "bigan", "vae", "ae", "aae", "vaegan", "pix2pix"])
def test_adam_betas_have_one_name_in_every_family_and_the_old_one_still_works(preset):
    """adam_beta1 / adam_beta2 in every family (beta alone is the VAE's KL weight), so one --set
    reaches a mixed comparison; the GANs' old beta1 / beta2 still work with a deprecation note,
    and a run saved under them loads without one."""
    import warnings

    from ganvae.config import from_dict
    from ganvae.data import load_dataset
    from ganvae.registry import resolve
    from ganvae.trainer import build

    data = "task:lowres@shapes:n=64,n_test=8" if preset == "pix2pix" else "shapes:n=64,n_test=8"
    ds = load_dataset(data)
    size = {"width": 4} if preset == "pix2pix" else {"width": 4, "latent": 4}
    _, cfg = build(preset, ds, {"adam_beta1": "0.3", "adam_beta2": "0.95", **size})
    assert (cfg.adam_beta1, cfg.adam_beta2) == (0.3, 0.95)
    with pytest.warns(FutureWarning, match=f"--set for {preset}: beta1 is now adam_beta1"):
        _, old = build(preset, ds, {"beta1": "0.3", **size})
    assert old.adam_beta1 == 0.3
    cls, _ = resolve(preset)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a saved config.json is read as written, silently
        assert from_dict(cls.Config, {"beta1": 0.1, "beta2": 0.9}, where="run/config.json").adam_beta2 == 0.9
