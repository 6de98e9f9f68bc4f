"""The procedural shapes dataset."""

import numpy as np
import pytest

from ganvae.data import load_dataset
from ganvae.data.shapes import SHAPES, render
from ganvae.errors import BadInput


def test_default_shapes():
    ds = load_dataset("shapes:n=500,n_test=100")
    assert ds.shape == (1, 28, 28) and len(ds.train) == 500 and len(ds.test) == 100
    assert ds.classes == list(SHAPES)[:10]
    assert np.bincount(ds.train.y).tolist() == [50] * 10  # balanced modes
    assert ds.train.x.dtype == np.uint8
    # every image has a shape on a black background
    assert (ds.train.x.reshape(500, -1).max(axis=1) > 100).all()
    assert (ds.train.x[:, 0, 0, 0] == 0).mean() > 0.9


def test_deterministic_by_seed_and_split():
    a = load_dataset("shapes:n=64,n_test=16", seed=5)
    b = load_dataset("shapes:n=64,n_test=16", seed=5)
    c = load_dataset("shapes:n=64,n_test=16", seed=6)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.x, c.train.x)
    assert not np.array_equal(a.train.x[:16], a.test.x)  # the splits are different draws


def test_classes_are_distinct_shapes():
    """Drawn at one position and scale, every pair of shapes differs in many pixels."""
    g = (np.arange(64) + 0.5) / 32 - 1  # [-1, 1]
    masks = {k: f(g[None, :], g[:, None]) for k, f in SHAPES.items()}
    for a in masks:
        assert 0.05 < masks[a].mean() < 0.8, a
        for b in masks:
            if a < b:
                assert (masks[a] != masks[b]).mean() > 0.08, (a, b)


@pytest.mark.parametrize("size,channels", [(32, 3), (64, 1), (16, 1)])
def test_any_size_and_channels(size, channels):
    ds = load_dataset("shapes:n=20,n_test=5", size=size, channels=channels)
    assert ds.shape == (channels, size, size)


def test_render_disc_area_matches_closed_form():
    # one disc of radius r px covers pi*(0.9 r)^2 pixels (the disc fills 0.9 of the radius)
    rng = np.random.default_rng(0)
    x = render(np.zeros(200, int), 64, 1, rng).astype(float)
    # undo the intensity: coverage = pixel / max pixel of that image
    cover = x / x.reshape(200, -1).max(axis=1)[:, None, None, None]
    rng = np.random.default_rng(0)
    r = rng.uniform(0.22, 0.4, 200) * 64
    expected = np.pi * (0.9 * r) ** 2
    np.testing.assert_allclose(cover.reshape(200, -1).sum(1), expected, rtol=0.03)


@pytest.mark.parametrize("spec,msg", [
    ("shapes:classes=99", "classes=99"),
    ("shapes:n=0", "n=0"),
    ("shapes:foo=1", "shapes option 'foo=1'"),
    ("shapes:n=abc", "must be an integer"),
])
def test_bad_options(spec, msg):
    with pytest.raises(BadInput, match=msg):
        load_dataset(spec)
