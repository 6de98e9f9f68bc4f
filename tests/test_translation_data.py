"""The built-in translation domains (data/tasks.py) against what they must be by construction."""

import numpy as np
import pytest

from ganvae.data.tasks import TRANSLATION_TASKS, class_tints, colorized, inverted, lowres, sobel_edges
from ganvae.errors import BadInput


def test_sobel_edges_outline_a_square():
    x = np.zeros((2, 1, 16, 16), np.uint8)
    x[0, 0, 4:12, 4:12] = 200                                   # a bright square; image 1 is flat
    e = sobel_edges(x)
    assert e.shape == (2, 1, 16, 16) and e.dtype == np.uint8 and set(np.unique(e)) <= {0, 255}
    on = e[0, 0] == 255
    assert on[4, 6] and on[11, 6] and on[6, 4] and on[6, 11]    # the square's four sides
    assert not on[7:9, 7:9].any() and not on[0, :].any()        # not its flat inside, not far away
    assert not e[1].any()                                       # a flat image has no edges


def test_lowres_is_the_block_mean_repeated():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    for f in (2, 4):
        lo = lowres(x, f)
        assert lo.shape == x.shape and lo.dtype == np.uint8
        blocks = lo.reshape(3, 1, 28 // f, f, 28 // f, f)
        assert (blocks == blocks[:, :, :, :1, :, :1]).all()     # constant within each block
        means = x.reshape(3, 1, 28 // f, f, 28 // f, f).astype(float).mean((3, 5))
        assert np.abs(blocks[:, :, :, 0, :, 0] - means).max() <= 0.5
    assert (lowres(x, 1) == x).all()
    with pytest.raises(BadInput, match="do not divide"):
        lowres(x, 3)


def test_makers_give_the_same_images_a_chunk_at_a_time(monkeypatch):
    """Large datasets are made CHUNK images at a time (memory, speed): the same bytes as at once,
    labels cut with their images."""
    from ganvae.data import tasks

    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (23, 3, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 4, 23)
    whole = (sobel_edges(x), lowres(x, 2), colorized(x, y, 4, seed=3))
    monkeypatch.setattr(tasks, "CHUNK", 5)                      # 5 chunks, the last of 3 images
    cut = (sobel_edges(x), lowres(x, 2), colorized(x, y, 4, seed=3))
    for a, b in zip(whole, cut):
        assert a.shape[0] == 23 and a.dtype == b.dtype and np.array_equal(a, b)
    with pytest.raises(BadInput, match="needs class labels"):
        colorized(x, None, 3)


def test_inverted_and_colorized():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8)
    assert (inverted(inverted(x)) == x).all() and (inverted(x).astype(int) + x == 255).all()
    y = np.array([0, 1, 2, 0, 1, 2])
    c = colorized(x, y, 3, seed=5)
    assert c.shape == (6, 3, 8, 8)
    tint = class_tints(3, seed=5)
    assert ((tint >= 0.25) & (tint <= 1)).all()
    # every pixel is the grey value times its class's colour, to rounding
    expect = x[:, :1].astype(float) * tint[y][:, :, None, None]
    assert np.abs(c - expect).max() <= 0.5
    assert not np.array_equal(class_tints(3, seed=5), class_tints(3, seed=6))
    with pytest.raises(BadInput, match="needs class labels"):
        colorized(x, None, 3)


def test_every_task_pairs_aligned_images():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    y = np.arange(4) % 10
    for name, (source, make_a, make_b, text) in TRANSLATION_TASKS.items():
        a, b = make_a(x, y, 10), make_b(x, y, 10)
        assert a.dtype == b.dtype == np.uint8 and len(a) == len(b) == 4, name
        assert a.shape[2:] == b.shape[2:] == (28, 28) and source == "fashion-mnist" and text


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_task_data_pairs_every_split(run_cli):
    """--data task:NAME: the source's images are the targets, each with its input image; the
    pairs survive the validation hold-out, and `ganvae datasets` lists the tasks."""
    from ganvae.data import load_dataset
    from ganvae.data.base import hold_out_val

    ds = load_dataset("task:lowres2fashion")
    fm = load_dataset("fashion-mnist")
    assert ds.name == "task:lowres2fashion" and ds.classes == fm.classes
    assert (ds.train.x == fm.train.x).all() and (ds.test.a == lowres(fm.test.x, 4)).all()
    assert ds.info["translation"]["a_shape"] == [1, 28, 28] and ds.info["translation"]["paired"]
    held = hold_out_val(ds, 1000, seed=0)
    assert len(held.val) == 1000 and held.val.a is not None
    assert (held.val.a == lowres(held.val.x, 4)).all() and (held.train.a == lowres(held.train.x, 4)).all()
    col = load_dataset("task:colorized")
    assert col.train.x.shape[1:] == (3, 28, 28) and col.train.a.shape[1:] == (1, 28, 28)
    small = load_dataset("task:edges2fashion", size=16)
    assert small.train.a.shape[1:] == small.train.x.shape[1:] == (1, 16, 16)
    with pytest.raises(BadInput, match="unknown translation task"):
        load_dataset("task:nope")
    with pytest.raises(BadInput, match="give a task name"):
        load_dataset("task:")
    code, out, _ = run_cli("datasets")
    assert code == 0 and "task:edges2fashion" in out and "task:colorized" in out


def _pair_dir(tmp_path, n=6, size=(12, 12)):
    from PIL import Image

    rng = np.random.default_rng(3)
    for side in ("A", "B"):
        (tmp_path / "p" / side).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = rng.integers(0, 256, size[::-1], dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / "p" / "A" / f"{i:03d}.png")
        Image.fromarray(255 - img).save(tmp_path / "p" / "B" / f"{i:03d}.png")
    return tmp_path / "p"


def test_pairs_folder_keeps_partners_aligned(tmp_path):
    from ganvae.data import load_dataset

    d = _pair_dir(tmp_path)
    (d / "A" / "broken.png").write_bytes(b"not an image")
    (d / "B" / "broken.png").write_bytes(b"not an image either")
    with pytest.warns(UserWarning, match="skipped 2 file"):
        ds = load_dataset(f"pairs:{d}")
    assert len(ds.train) + len(ds.test) == 6 and len(ds.test) == 1
    for sp in (ds.train, ds.test):                       # B was made as 255 - A: still so, pair by pair
        assert sp.a.shape == sp.x.shape and (sp.x.astype(int) + sp.a == 255).all()


@pytest.mark.parametrize("damage,msg", [
    (lambda d: (d / "B" / "003.png").unlink(), "A/003 has no partner in B/"),
    (lambda d: (d / "A" / "001.png").unlink(), "B/001 has no partner in A/"),
    (lambda d: __import__("PIL.Image").Image.fromarray(np.zeros((8, 8), np.uint8)).save(d / "B" / "002.png"),
     "is 12x12 but its partner B/002.png is 8x8"),
    (lambda d: __import__("shutil").rmtree(d / "B"), "needs the folders"),
])
def test_bad_pairs_are_one_line_errors(damage, msg, tmp_path, run_cli):
    d = _pair_dir(tmp_path)
    damage(d)
    code, _, err = run_cli("datasets", "show", f"pairs:{d}", "-o", tmp_path / "x.png")
    assert code == 2 and msg in err and "Traceback" not in err and err.count("\n") == 1


def test_unpaired_folders(tmp_path):
    """unpaired:A,B: B the targets, A a set of its own scaled to B's size; a validation hold-out
    takes the same share of each, and a bad spec is a one-line error."""
    from PIL import Image

    from ganvae.data import load_dataset
    from ganvae.data.base import hold_out_val

    rng = np.random.default_rng(4)
    for side, n, size in (("a", 30, 20), ("b", 50, 16)):
        (tmp_path / side).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(tmp_path / side / f"{i}.png")
    ds = load_dataset(f"unpaired:{tmp_path / 'a'},{tmp_path / 'b'}")
    assert ds.train.x.shape[1:] == ds.train.a.shape[1:] == (1, 16, 16)
    assert len(ds.train) + len(ds.test) == 50 and len(ds.train.a) + len(ds.test.a) == 30
    assert not ds.train.paired and not ds.info["translation"]["paired"]
    held = hold_out_val(ds, 0.2, seed=0)
    assert len(held.val) == 9 and len(held.val.a) == 5 and len(held.train.a) == 22
    assert not set(map(bytes, held.val.a)) & set(map(bytes, held.train.a))    # disjoint
    with pytest.raises(BadInput, match="give two folders"):
        load_dataset(f"unpaired:{tmp_path / 'a'}")
