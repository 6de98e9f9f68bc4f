"""Property-based bad input (issue 6): every malformed case ends in BadInput / exit 2 with one
line on stderr — never another exception, a traceback, a hang or a crash.

The figures in BENCHMARKS.md come from
    .venv/bin/python -m pytest tests/test_fuzz.py -q --hypothesis-show-statistics
"""

import gzip
import io
import struct
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganvae.config import parse_set, replace
from ganvae.data.folder import load_folder
from ganvae.data.idx import read_idx
from ganvae.data.npz import load_npz
from ganvae.errors import BadInput
from ganvae.trainer import TrainConfig

FAST = settings(max_examples=500, deadline=2000, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])
SLOW = settings(max_examples=150, deadline=5000, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


def idx_bytes():
    """Mostly well-formed headers with random types, dims and payload lengths, or pure noise."""
    header = st.builds(
        lambda t, dims, extra, payload: bytes([0, 0, t, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
        + payload[: max(0, extra)],
        st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
        st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 40), min_size=0, max_size=5),
        st.integers(-10, 5000),
        st.binary(min_size=0, max_size=5000),
    )
    return header | st.binary(max_size=300)


@FAST
@given(data=idx_bytes(), gz=st.booleans(), cut=st.integers(0, 40))
def test_idx_parser(tmp_path, data, gz, cut):
    raw = gzip.compress(data) if gz else data
    if gz and cut:
        raw = raw[:-cut]  # truncated gzip streams too
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(raw)
    try:
        a = read_idx(path)
    except BadInput as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    assert a.ndim >= 1  # a valid file: the header's shape


ARRAYS = st.one_of(
    st.builds(lambda shape, dt: np.zeros(shape, dtype=dt),
              st.lists(st.integers(0, 9), min_size=0, max_size=5).map(tuple),
              st.sampled_from([np.uint8, np.int8, np.int64, np.float32, np.bool_, np.complex64])),
    st.builds(lambda n: np.array(["a"] * n), st.integers(0, 3)),
)


@FAST
@given(arrays=st.dictionaries(st.sampled_from(["x", "y", "x_test", "y_test", "other"]), ARRAYS, max_size=4),
       size=st.none() | st.integers(-2, 40), channels=st.none() | st.integers(-1, 4))
def test_npz_loader(tmp_path, arrays, size, channels):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    try:
        ds = load_npz(path, size=size, channels=channels)
    except BadInput as e:
        assert "\n" not in str(e)
        return
    assert ds.train.x.dtype == np.uint8 and ds.train.x.ndim == 4


@FAST
@given(raw=st.binary(max_size=400))
def test_npz_noise(tmp_path, raw):
    path = tmp_path / "d.npz"
    path.write_bytes(raw if not raw.startswith(b"PK") else raw)
    with pytest.raises(BadInput):
        load_npz(path)


@FAST
@given(names=st.lists(st.text("abcxyz", min_size=1, max_size=6), min_size=1, max_size=4, unique=True),
       raw=st.binary(max_size=64))
def test_npz_zip_of_junk(tmp_path, names, raw):
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as z:
        for n in names:
            z.writestr(f"{n}.npy", raw)
    with pytest.raises(BadInput):
        load_npz(path)


def _png(w, h, mode):
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (w, h), 128).save(buf, format="PNG")
    return buf.getvalue()


FILES = st.one_of(
    st.binary(max_size=200),
    st.builds(_png, st.integers(1, 40), st.integers(1, 40), st.sampled_from(["L", "RGB", "RGBA", "1", "P"])),
    st.builds(lambda b, cut: b[:cut], st.builds(_png, st.integers(1, 20), st.integers(1, 20), st.just("RGB")),
              st.integers(0, 80)),
)


@SLOW
@given(files=st.lists(st.tuples(st.sampled_from(["", "a/", "b/", "train/", "test/", "train/a/", "test/a/"]),
                                st.sampled_from([".png", ".jpg", ".gif", ".txt", ".webp", ""]), FILES),
                      max_size=8),
       size=st.none() | st.integers(-1, 64), channels=st.none() | st.integers(0, 4))
def test_folder_loader(tmp_path_factory, files, size, channels):
    root = tmp_path_factory.mktemp("f")
    for i, (sub, ext, data) in enumerate(files):
        p = root / f"{sub}{i}{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = load_folder(root, size=size, channels=channels)
    except BadInput as e:
        assert "\n" not in str(e)
        return
    assert ds.train.x.ndim == 4 and len(ds.test) >= 1


@FAST
@given(items=st.lists(st.text(min_size=0, max_size=30), max_size=4))
def test_set_parser_and_train_config(items):
    try:
        cfg = replace(TrainConfig(), parse_set(items), where="--set")
    except BadInput as e:
        assert "\n" not in str(e)
        return
    assert isinstance(cfg, TrainConfig)


@FAST
@given(key=st.sampled_from(["beta", "latent", "width", "lr", "likelihood", "kl_warmup", "sigma", "learn_sigma",
                            "nope", "model.beta", "train.steps", "data.size"]),
       value=st.text(max_size=12) | st.integers(-10**6, 10**6).map(str) | st.floats().map(str))
def test_model_overrides(key, value):
    from ganvae.registry import resolve

    cls, cfg = resolve("vae")
    try:
        replace(cfg, {key: value}, where="--set")
    except BadInput as e:
        assert "\n" not in str(e)


BAD_OPTIONS = st.sampled_from([
    ["--steps", "-5"], ["--steps", "x"], ["--epochs", "-1"], ["--budget", "soon"], ["--budget", "-3m"],
    ["--batch-size", "0"], ["--batch-size", "100000"], ["--precision", "fp8"], ["--device", "tpu"],
    ["--set", "nope=1"], ["--set", "beta=high"], ["--set", "novalue"], ["--set", "train.log_every=0"],
    ["--data", "nothing"], ["--data", "npz:/no/such.npz"], ["--data", "shapes:classes=99"], ["--size", "3"],
    ["--channels", "2"], ["--config", "/no/such.yaml"], ["--seed", "abc"], ["--log-every", "x"],
])
OK_OPTIONS = st.sampled_from([[], ["--steps", "1"], ["--batch-size", "8"], ["--set", "width=8"], ["--seed", "3"]])


@SLOW
@given(bad=BAD_OPTIONS, ok=st.lists(OK_OPTIONS, max_size=3), model=st.sampled_from(["vae", "dcgan", "nope"]))
def test_cli_train_options(tmp_path_factory, capsys, bad, ok, model):
    from ganvae.cli import main

    run = tmp_path_factory.mktemp("r") / "run"
    args = ["train", model, "--data", "shapes:n=64,n_test=8", "--quiet", "--out", str(run)]
    for o in ok:
        args += o
    args += bad  # last, so the bad value is the one that counts
    code = main(args)
    _, err = capsys.readouterr()
    assert code == 2, (args, err)
    assert "Traceback" not in err
    assert not (run / "checkpoints").exists()  # refused before any work


@SLOW
@given(args=st.lists(st.sampled_from(["-n", "0", "-5", "x", "--seed", "-o", "/tmp/x.txt", "--k", "--nll-k",
                                      "--samples", "--data", "shapes", "/no/run", "--method", "umap", "--dims",
                                      "--pairs", "--steps", "999", ""]), max_size=6),
       command=st.sampled_from(["sample", "reconstruct", "interpolate", "traverse", "embed", "eval", "report",
                                "datasets", "compare"]))
def test_cli_other_commands(capsys, command, args):
    from ganvae.cli import main

    code = main([command, *args])
    _, err = capsys.readouterr()
    assert code in (0, 2), ([command, *args], err)
    assert "Traceback" not in err
