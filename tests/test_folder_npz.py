"""folder:PATH and npz:PATH datasets, on files the tests write with Pillow and numpy."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganvae.data import load_dataset
from ganvae.data.folder import SkippedFilesWarning
from ganvae.errors import BadInput


def _img(path: Path, size, mode="RGB", value=None, fmt=None):
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    w, h = size
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    a = rng.integers(0, 256, shape, dtype=np.uint8) if value is None else np.full(shape, value, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, mode).save(path, format=fmt)


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """Two classes, mixed sizes, RGB and grey, every format, plus three broken files."""
    root = tmp_path / "imgs"
    for i in range(6):
        _img(root / "cats" / f"c{i}.png", (40, 40), "RGB")
        _img(root / "dogs" / f"d{i}.jpg", (40, 40), "L")
    _img(root / "cats" / "wide.bmp", (80, 40), "RGB")
    _img(root / "dogs" / "small.gif", (20, 20), "L")
    _img(root / "dogs" / "w.webp", (40, 40), "RGB")
    (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "dogs" / "notes.txt").write_text("not an image")
    good = root / "cats" / "c0.png"
    (root / "cats" / "truncated.png").write_bytes(good.read_bytes()[:60])
    return root


def test_folder_mixed_sizes_and_broken_files(mixed_folder):
    with pytest.warns(SkippedFilesWarning, match="skipped 3 file"):
        ds = load_dataset(f"folder:{mixed_folder}")
    n = len(ds.train) + len(ds.test)
    assert n == 15
    assert ds.shape == (3, 40, 40)  # most common size; RGB present -> 3 channels
    assert ds.classes == ["cats", "dogs"]
    y = np.concatenate([ds.train.y, ds.test.y])
    assert np.bincount(y).tolist() == [7, 8]
    assert len(ds.test) == 2  # 10% of 15, rounded
    assert ds.info["skipped"] == 3


def test_folder_size_and_channels_options(mixed_folder):
    with pytest.warns(SkippedFilesWarning):
        ds = load_dataset(f"folder:{mixed_folder}", size=16, channels=1)
    assert ds.shape == (1, 16, 16)


def test_folder_centre_crop_keeps_the_centre(tmp_path):
    # a 60x20 image: left and right thirds black, centre square white
    a = np.zeros((20, 60), np.uint8)
    a[:, 20:40] = 255
    for i in range(3):
        Image.fromarray(a).save(tmp_path / f"{i}.png")
    ds = load_dataset(f"folder:{tmp_path}", size=10)
    assert ds.shape == (1, 10, 10)
    # only the white centre survives (the bicubic kernel softens the edge a little);
    # a squash instead of a crop would leave black thirds at both sides
    assert ds.train.x.min() >= 200 and ds.train.x.mean() > 245


def test_folder_grey_only_gives_one_channel_unlabelled(tmp_path):
    for i in range(5):
        _img(tmp_path / f"{i}.png", (12, 12), "L")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.shape == (1, 12, 12) and ds.classes is None and ds.train.y is None


def test_folder_train_test_subfolders(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                _img(tmp_path / split / cls / f"{i}.png", (8, 8), "L")
    ds = load_dataset(f"folder:{tmp_path}")
    assert len(ds.train) == 8 and len(ds.test) == 4 and ds.classes == ["a", "b"]


def test_folder_deterministic_split(mixed_folder):
    with pytest.warns(SkippedFilesWarning):
        a = load_dataset(f"folder:{mixed_folder}", seed=3)
    with pytest.warns(SkippedFilesWarning):
        b = load_dataset(f"folder:{mixed_folder}", seed=3)
    np.testing.assert_array_equal(a.test.x, b.test.x)


def test_folder_empty_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(BadInput, match="no readable images"):
        load_dataset(f"folder:{tmp_path}")


def test_folder_missing_is_an_error(tmp_path):
    with pytest.raises(BadInput, match="no such folder"):
        load_dataset(f"folder:{tmp_path / 'absent'}")


def _png_claiming(path: Path, w: int, h: int):
    """A tiny PNG whose header claims w x h pixels (a decompression-bomb shape)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [12_000, 40_000])  # above 1x and 2x Pillow's limit
def test_folder_decompression_bomb_refused(tmp_path, side):
    _img(tmp_path / "ok.png", (8, 8), "L")
    _png_claiming(tmp_path / "bomb.png", side, side)
    with pytest.raises(BadInput, match="bomb.png: refused as a possible decompression bomb"):
        load_dataset(f"folder:{tmp_path}")


def test_cli_show_folder_with_broken_files(mixed_folder, run_cli, tmp_path):
    out_png = tmp_path / "g.png"
    code, out, err = run_cli("datasets", "show", f"folder:{mixed_folder}", "-o", out_png, "--n", 13)
    assert code == 0, err
    assert "skipped 3 file(s)" in err and err.count("\n") == 1
    grid = np.asarray(Image.open(out_png))
    assert grid.shape == (2 + 4 * 42, 2 + 4 * 42, 3)  # 13 images -> 4x4 grid of 40px + 2px pads


def test_cli_bomb_is_exit_2(tmp_path, run_cli):
    _png_claiming(tmp_path / "bomb.png", 40_000, 40_000)
    code, _, err = run_cli("datasets", "show", f"folder:{tmp_path}", "-o", tmp_path / "g.png")
    assert code == 2 and "decompression bomb" in err and "Traceback" not in err


# ------------------------------------------------------------------------------- npz


def test_npz_nhw_with_labels(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (50, 9, 9), dtype=np.uint8)
    y = np.arange(50) % 5
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert ds.shape == (1, 9, 9) and len(ds.train) == 45 and len(ds.test) == 5
    assert ds.classes == ["0", "1", "2", "3", "4"]
    # every image went to exactly one split, with its own label
    both = np.concatenate([ds.train.x, ds.test.x])[:, 0]
    labels = np.concatenate([ds.train.y, ds.test.y])
    order = np.lexsort(both.reshape(50, -1).T)
    ref = np.lexsort(x.reshape(50, -1).T)
    np.testing.assert_array_equal(both[order], x[ref])
    np.testing.assert_array_equal(labels[order], y[ref])


def test_npz_nchw_with_test_split(tmp_path):
    x = np.zeros((6, 3, 8, 8), np.uint8)
    np.savez(tmp_path / "d.npz", x=x, x_test=x[:2])
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}", size=4)
    assert ds.shape == (3, 4, 4) and len(ds.train) == 6 and len(ds.test) == 2 and ds.classes is None


NPZ_BAD = {
    "float images": (dict(x=np.zeros((4, 8, 8), np.float32)), "must be uint8"),
    "channels last": (dict(x=np.zeros((4, 8, 8, 3), np.uint8)), "channels-last"),
    "2-d": (dict(x=np.zeros((4, 8), np.uint8)), "must be \\(N, H, W\\)"),
    "label count": (dict(x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(3, int)), "one per image"),
    "float labels": (dict(x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(4)), "must be integers"),
    "negative labels": (dict(x=np.zeros((4, 8, 8), np.uint8), y=-np.ones(4, int)), "non-negative"),
    "no x": (dict(images=np.zeros((4, 8, 8), np.uint8)), "no array 'x'"),
    "pickled objects": (dict(x=np.array([{"a": 1}] * 4, dtype=object)), "without unpickling"),
}


@pytest.mark.parametrize("case", NPZ_BAD)
def test_npz_bad(tmp_path, case, run_cli):
    arrays, message = NPZ_BAD[case]
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(BadInput, match=message):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")
    code, _, err = run_cli("datasets", "show", f"npz:{tmp_path / 'd.npz'}", "-o", tmp_path / "g.png")
    assert code == 2 and "d.npz" in err and "Traceback" not in err


def test_npz_not_an_archive(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 this is no zip")
    with pytest.raises(BadInput, match="not a valid .npz"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")


@pytest.mark.parametrize("content,kind", [(b"hello", "not a zip archive"),
                                          (b"\x93NUMPY\x01\x00", "a .npy array (numpy.save)")])
def test_a_file_that_is_not_an_npz_says_so_not_numpys_pickle_message(tmp_path, run_cli, content, kind):
    f = tmp_path / "x.npz"
    f.write_bytes(content)
    code, _, err = run_cli("train", "ae", "--data", f"npz:{f}", "--steps", 1)
    assert code == 2 and err.strip() == (f"ganvae: error: npz:{f}: not an .npz file ({kind}); "
                                         "write one with numpy.savez(path, x=images)")
    code, _, err = run_cli("eval", "--samples", f, "--data", "shapes")
    assert code == 2 and err.startswith(f"ganvae: error: --samples {f}: not an .npz file") and "pickle" not in err


def test_read_folder_counts_what_fitting_changed_and_train_still_names_only_skips(mixed_folder):
    """One Fitting for every folder reader: `--samples` says all of it; a data folder (train)
    still warns only of the files it skipped, in the same words."""
    from ganvae.data.folder import read_folder

    x, kept, fitting = read_folder(mixed_folder, 40, 1)
    assert x.shape == (15, 1, 40, 40) and len(kept) == 15
    # 6 RGB PNGs, the RGB BMP and WebP, and the GIF (a palette image, counted as colour as
    # load_folder's choice of channels counts it) -> grey; the 80x40 BMP and 20x20 GIF -> 40x40
    assert fitting.recoloured == 9 and dict(fitting.resized) == {(80, 40): 1, (20, 20): 1}
    assert fitting.note("--samples D", mixed_folder) == (
        "--samples D: 9 colour images converted to grey; 2 images resized from 20x20 / 80x40 to 40x40 "
        "(non-square ones centre-cropped); skipped 3 file(s) that are not readable images "
        "(cats/broken.png, dogs/notes.txt, cats/truncated.png)")
    _, _, rgb = read_folder(mixed_folder, 40, 3)
    assert rgb.note("D", mixed_folder).startswith("D: 6 grey images converted to RGB; 2 images resized")
    with pytest.warns(SkippedFilesWarning) as caught:
        load_dataset(f"folder:{mixed_folder}", size=40, channels=1)
    assert [str(w.message) for w in caught] == [
        f"{mixed_folder}: skipped 3 file(s) that are not readable images "
        "(cats/broken.png, dogs/notes.txt, cats/truncated.png)"]
