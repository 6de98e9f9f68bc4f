"""The IDX reader and the named IDX datasets, on small files the tests write."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from ganvae.data import load_dataset
from ganvae.data.idx import read_idx, read_idx_header, write_idx
from ganvae.errors import BadInput


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_round_trip_plain_and_gzip(tmp_path, name):
    x = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    write_idx(tmp_path / name, x)
    np.testing.assert_array_equal(read_idx(tmp_path / name, ndim=3), x)
    assert read_idx_header(tmp_path / name) == (np.dtype(np.uint8), (5, 7, 3))


def test_big_endian_types_decoded(tmp_path):
    y = np.array([1, -2, 300000], dtype=np.int32)
    write_idx(tmp_path / "y", y)
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), y)


def test_named_dataset_from_data_dir(tiny_idx_dir):
    ds = load_dataset("mnist", data_dir=tiny_idx_dir)
    assert ds.train.x.shape == (30, 1, 28, 28) and ds.test.x.shape == (10, 1, 28, 28)
    assert ds.train.x.dtype == np.uint8 and ds.train.y.dtype == np.int64
    assert ds.classes == [str(i) for i in range(10)] and ds.source == str(tiny_idx_dir)
    np.testing.assert_array_equal(ds.test.y, np.arange(10))


def test_ganvae_data_env_is_searched(tiny_idx_dir, monkeypatch, tmp_path):
    # $GANVAE_DATA/<name> is searched when no --data-dir is given
    root = tmp_path / "root"
    (root).mkdir()
    tiny_idx_dir.rename(root / "mnist")
    monkeypatch.setenv("GANVAE_DATA", str(root))
    assert load_dataset("mnist").source == str(root / "mnist")


def _bytes(x: np.ndarray, magic=None, dims=None) -> bytes:
    dims = x.shape if dims is None else dims
    header = magic if magic is not None else bytes([0, 0, 8, len(dims)])
    return header + struct.pack(f">{len(dims)}I", *dims) + x.tobytes()


BAD_CASES = {
    "wrong magic": (_bytes(np.zeros((2, 4, 4), np.uint8), magic=b"\x50\x4b\x03\x04"), "not an IDX file"),
    "unknown type": (_bytes(np.zeros((2, 4, 4), np.uint8), magic=bytes([0, 0, 0x42, 3])), "not an IDX file"),
    "truncated data": (_bytes(np.zeros((2, 4, 4), np.uint8))[:-5], "truncated IDX file"),
    "truncated header": (bytes([0, 0, 8, 3, 0, 0]), "truncated IDX file"),
    "absurd dims": (_bytes(np.zeros((1,), np.uint8), dims=(1, 100000, 100000)), "absurd IDX dimensions"),
    "zero dims": (_bytes(np.zeros((0,), np.uint8), dims=(2, 0, 28)), "absurd IDX dimensions"),
    "trailing bytes": (_bytes(np.zeros((2, 4, 4), np.uint8)) + b"xx", "trailing bytes"),
    "empty file": (b"", "not an IDX file"),
}


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("gz", [False, True])
def test_bad_idx_is_one_clear_error(tmp_path, case, gz):
    data, message = BAD_CASES[case]
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(BadInput, match=message) as e:
        read_idx(path, ndim=3)
    assert str(path) in str(e.value)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(_bytes(np.arange(600, dtype=np.uint8).reshape(6, 10, 10) % 7))[:-20])
    with pytest.raises(BadInput, match="corrupt or truncated gzip"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "f.gz"
    raw = bytearray(gzip.compress(_bytes(np.zeros((6, 10, 10), np.uint8))))
    raw[12:20] = b"\xff" * 8  # damage the deflate stream
    path.write_bytes(bytes(raw))
    with pytest.raises(BadInput, match="gzip"):
        read_idx(path)


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "f.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(BadInput, match="gzip"):
        read_idx(path)


def test_wrong_ndim(tmp_path):
    write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(BadInput, match="expected 3-dimensional"):
        read_idx(tmp_path / "labels", ndim=3)


def test_counts_disagree(tiny_idx_dir):
    write_idx(tiny_idx_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(BadInput, match="9 labels for 10 images"):
        load_dataset("mnist", data_dir=tiny_idx_dir)


def test_missing_named_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GANVAE_DATA", raising=False)
    (tmp_path / "nothing").mkdir()   # a directory without the files
    with pytest.raises(BadInput, match="ganvae datasets download mnist"):
        load_dataset("mnist", data_dir=tmp_path / "nothing")


def test_missing_path(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        read_idx(tmp_path / "absent")


@pytest.mark.parametrize("case", ["wrong magic", "truncated data", "absurd dims"])
def test_cli_bad_idx_exit_2_no_traceback(tiny_idx_dir, run_cli, case):
    data, message = BAD_CASES[case]
    (tiny_idx_dir / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(data))
    code, out, err = run_cli("datasets", "show", "mnist", "--data-dir", tiny_idx_dir, "-o", tiny_idx_dir / "g.png")
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert message in err and "train-images-idx3-ubyte.gz" in err
    assert not (tiny_idx_dir / "g.png").exists()


def test_fashion_mnist_installed_and_listed(run_cli):
    """The Debian package (installed by `make setup`) is found with its real sizes."""
    code, out, _ = run_cli("datasets")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("fashion-mnist"))
    assert row.split()[1:5] == ["60000", "10000", "1x28x28", "10"]


def test_fashion_mnist_loads_real_data():
    ds = load_dataset("fashion-mnist")
    assert ds.train.x.shape == (60000, 1, 28, 28) and ds.test.x.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.train.y).tolist() == [6000] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    # background is black, clothes are bright: a real image, not noise
    assert ds.train.x[:, :, 0, 0].mean() < 5 and ds.train.x.mean() > 50


def test_fashion_mnist_files_match_recorded_checksums():
    """The checksums `download` verifies against are those of the real data."""
    import hashlib

    from ganvae.data.named import NAMED, _file, find

    d = find("fashion-mnist")
    for stem, digest in NAMED["fashion-mnist"].sha256.items():
        with gzip.open(_file(Path(d), stem)) as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, stem


def test_ganvae_cache_moves_downloaded_datasets_too(tmp_path, monkeypatch, tiny_idx_dir):
    import shutil

    from ganvae.data.named import cache_dir

    monkeypatch.setenv("GANVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANVAE_DATA", raising=False)
    assert cache_dir("mnist") == tmp_path / "cache" / "mnist"
    shutil.copytree(tiny_idx_dir, tmp_path / "cache" / "mnist")   # as `datasets download` leaves it
    ds = load_dataset("mnist")
    assert len(ds.train) + len(ds.test) > 0
