"""The procedural `factors` dataset: known, independent generative factors rendered exactly."""

import numpy as np
import pytest

from ganvae.data import Split, load_dataset
from ganvae.data.base import hold_out_val, limit_train
from ganvae.data.factors import BOUND, HUES, POSITIONS, ROTATIONS, SCALES, SHAPE_NAMES, render_factors
from ganvae.data.shapes import SHAPES
from ganvae.errors import BadInput

SIZE = 28


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(x, y) centre of mass in pixel coordinates (pixel i covers [i, i+1]) of one (C, H, W)."""
    w = img.astype(float).sum(axis=0)
    c = np.arange(w.shape[0]) + 0.5
    return float((w.sum(axis=0) * c).sum() / w.sum()), float((w.sum(axis=1) * c).sum() / w.sum())


def ink(img: np.ndarray) -> float:
    return float(img.astype(float).sum() / 255)


@pytest.fixture(scope="module")
def small():
    return load_dataset("factors:n=600,n_test=100", seed=3)


def test_default_spec_layout(small):
    ds = small
    assert ds.shape == (1, SIZE, SIZE) and len(ds.train) == 600 and len(ds.test) == 100
    assert ds.classes == ["square", "ellipse", "triangle"] and ds.source == "procedural"
    info = ds.info["factors"]
    assert info["names"] == ["shape", "scale", "rotation", "x", "y"]
    assert info["levels"] == [3, 4, 8, 8, 8]
    assert [len(v) for v in info["values"]] == info["levels"]
    assert all(0 <= a < 90 for a in info["values"][2])  # rotations in [0, 90)
    for sp in (ds.train, ds.test):
        assert sp.x.dtype == np.uint8 and sp.y.dtype == np.int64 and sp.factors.dtype == np.int64
        assert sp.factors.shape == (len(sp), 5)
        np.testing.assert_array_equal(sp.y, sp.factors[:, 0])  # the label is the shape
        assert (sp.factors >= 0).all() and (sp.factors < np.array(info["levels"])).all()
        # every image has ink on a black background, and the images are what their factors say
        assert (sp.x.reshape(len(sp), -1).max(axis=1) > 200).all()
        np.testing.assert_array_equal(sp.x[:50], render_factors(sp.factors[:50], SIZE, 1))


def test_levels_roughly_uniform_and_independent():
    ds = load_dataset("factors:n=3000,n_test=1")
    f = ds.train.factors
    for k, levels in enumerate(ds.info["factors"]["levels"]):
        counts = np.bincount(f[:, k], minlength=levels)
        p = 1 / levels
        sd = np.sqrt(3000 * p * (1 - p))
        assert (abs(counts - 3000 * p) < 4.5 * sd).all(), (k, counts)
    # independence: the correlation of any two factors' levels is within sampling error
    r = np.corrcoef(f.T.astype(float))
    assert (abs(r[np.triu_indices(5, 1)]) < 4.5 / np.sqrt(3000)).all()


def test_deterministic_in_seed():
    a = load_dataset("factors:n=64,n_test=16", seed=5)
    b = load_dataset("factors:n=64,n_test=16", seed=5)
    c = load_dataset("factors:n=64,n_test=16", seed=6)
    d = load_dataset("factors:n=64,n_test=16,seed=6", seed=5)  # the spec's seed wins
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.train.factors, b.train.factors)
    assert not np.array_equal(a.train.factors, c.train.factors)
    np.testing.assert_array_equal(c.train.factors, d.train.factors)
    assert not np.array_equal(a.train.factors[:16], a.test.factors)  # the splits are different draws


def test_x_and_y_factors_translate_the_shape():
    step = (POSITIONS[1] - POSITIONS[0]) * SIZE  # pixels between neighbouring levels
    for shape in range(3):
        f = np.array([[shape, 2, 1, x, 4] for x in range(8)])
        com = np.array([centre_of_mass(im) for im in render_factors(f, SIZE, 1)])
        # the centre of mass moves right one step per level; anti-aliasing keeps it sub-pixel exact
        np.testing.assert_allclose(np.diff(com[:, 0]), step, atol=0.1)
        np.testing.assert_allclose(com[:, 1], com[0, 1], atol=0.1)  # and not up or down
        f = np.array([[shape, 2, 1, 4, y] for y in range(8)])
        com = np.array([centre_of_mass(im) for im in render_factors(f, SIZE, 1)])
        np.testing.assert_allclose(np.diff(com[:, 1]), step, atol=0.1)  # y grows downwards
        np.testing.assert_allclose(com[:, 0], com[0, 0], atol=0.1)


def test_scale_factor_grows_the_ink_quadratically():
    for shape in range(3):
        f = np.array([[shape, s, 3, 4, 4] for s in range(4)])
        a = np.array([ink(im) for im in render_factors(f, SIZE, 1)])
        assert (np.diff(a) > 0).all()
        # area scales with the radius squared (the coverage is exact up to the 4x4 supersampling)
        np.testing.assert_allclose(a / a[-1], (np.array(SCALES) / SCALES[-1]) ** 2, rtol=0.06)


def test_rotation_changes_the_image_but_not_the_ink():
    f = np.array([[0, 3, r, 4, 4] for r in range(8)])  # the largest square, every rotation
    imgs = render_factors(f, SIZE, 1)
    a = np.array([ink(im) for im in imgs])
    np.testing.assert_allclose(a, a[0], rtol=0.03)
    for r in range(1, 8):
        assert (imgs[r] != imgs[0]).mean() > 0.02, ROTATIONS[r]
        # a square turns about its centre (up to the 1/4-pixel steps of the 4x4 supersampling)
        np.testing.assert_allclose(centre_of_mass(imgs[r]), centre_of_mass(imgs[0]), atol=0.2)
    # no two rotation levels give the same image for any shape (levels span [0, 90) on purpose)
    for shape in range(3):
        imgs = render_factors(np.array([[shape, 3, r, 4, 4] for r in range(8)]), SIZE, 1).reshape(8, -1)
        diff = (imgs[:, None] != imgs[None, :]).mean(axis=2)
        assert (diff[np.triu_indices(8, 1)] > 0.01).all(), SHAPE_NAMES[shape]


def test_shapes_stay_inside_the_image():
    """Every shape lies within BOUND of its centre, and that disc is inside the image at every
    level; rendered at the extreme positions the largest shapes keep their full area."""
    g = np.linspace(-1.3, 1.3, 1301)
    for name in SHAPE_NAMES:
        inside = SHAPES[name](g[None, :], g[:, None])
        assert np.hypot(g[None, :], g[:, None])[inside].max() < BOUND, name
    reach = BOUND * max(SCALES)
    assert min(POSITIONS) - reach > 0 and max(POSITIONS) + reach < 1
    # the exact areas in units of r^2 (shapes.py's constants) against the rendered coverage
    area = {"square": 1.3**2, "ellipse": np.pi * 0.92 * 0.45, "triangle": 0.62 * 1.35**2}
    corners = ((0, 0), (7, 7), (0, 7), (7, 0))
    combos = np.array([(s, 3, r, x, y) for s in range(3) for r in range(8) for x, y in corners])
    got = np.array([ink(im) for im in render_factors(combos, SIZE, 1)])
    want = np.array([area[SHAPE_NAMES[s]] for s in combos[:, 0]]) * (SCALES[3] * SIZE) ** 2
    # 4x4 supersampling quantises the edges to 1/4 pixel: a few percent at this size
    np.testing.assert_allclose(got, want, rtol=0.07)


def test_three_channels_add_a_colour_factor():
    ds = load_dataset("factors:n=200,n_test=10", channels=3, size=32)
    assert ds.shape == (3, 32, 32) and ds.train.factors.shape == (200, 6)
    info = ds.info["factors"]
    assert info["names"][-1] == "colour" and info["levels"][-1] == len(HUES) == 4
    # hue 0 is pure red, 180 pure cyan: the ink is in exactly those channels
    x, colour = ds.train.x.reshape(200, 3, -1).sum(axis=2), ds.train.factors[:, 5]
    assert (x[colour == 0][:, 1:] == 0).all() and (x[colour == 0][:, 0] > 0).all()
    assert (x[colour == 2][:, 0] == 0).all() and (x[colour == 2][:, 1:] > 0).all()


def test_factors_survive_validation_hold_out_and_limit(small):
    ds = hold_out_val(small, 0.2, seed=1)
    assert len(ds.val) == 120 and len(ds.train) == 480
    for sp in (ds.train, ds.val):
        assert sp.factors.shape == (len(sp), 5)
        np.testing.assert_array_equal(sp.y, sp.factors[:, 0])
        np.testing.assert_array_equal(sp.x, render_factors(sp.factors, SIZE, 1))  # rows kept together
    # train and val together are the loaded rows, in order
    both = np.concatenate([ds.train.factors, ds.val.factors])
    assert sorted(map(tuple, both)) == sorted(map(tuple, small.train.factors))
    lim = limit_train(ds, 50, seed=2)
    assert lim.train.factors.shape == (50, 5)
    np.testing.assert_array_equal(lim.train.y, lim.train.factors[:, 0])
    np.testing.assert_array_equal(lim.train.x, render_factors(lim.train.factors, SIZE, 1))
    assert lim.val.factors is ds.val.factors and lim.as_loaded().train.factors is small.train.factors


def test_split_checks_the_factor_shape():
    x = np.zeros((4, 1, 8, 8), np.uint8)
    Split(x, factors=np.zeros((4, 2), np.int64))
    for bad in (np.zeros((3, 2), np.int64), np.zeros(4, np.int64), np.zeros((4, 2), np.float32)):
        with pytest.raises(AssertionError):
            Split(x, factors=bad)


@pytest.mark.parametrize("spec,kw,msg", [
    ("factors:n=0", {}, "n=0"),
    ("factors:n_test=-3", {}, "n_test=-3"),
    ("factors:foo=1", {}, "factors option 'foo=1'"),
    ("factors:classes=3", {}, "factors option 'classes=3'"),
    ("factors:n", {}, "factors option 'n'"),
    ("factors:n=abc", {}, "must be an integer"),
    ("factors", {"channels": 2}, "--channels 2"),
    ("factors", {"size": 2}, "--size 2"),
])
def test_bad_options(spec, kw, msg):
    with pytest.raises(BadInput, match=msg):
        load_dataset(spec, **kw)


def test_listed_by_the_datasets_command(run_cli):
    code, out, _ = run_cli("datasets")
    assert code == 0 and any(line.startswith("factors ") for line in out.splitlines())
