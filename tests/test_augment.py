"""Discriminator augmentation: DiffAugment and ADA ops against closed forms and numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganvae.augment import (
    DIFFAUG_OPS,
    AdaptiveAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    blit,
    diff_augment,
    geometric_matrix,
    parse_policy,
    rand_color,
    rand_cutout,
    rand_translation,
    resample,
    translate,
)
from ganvae.errors import BadInput

pytestmark = pytest.mark.usefixtures("one_thread")

POLICIES = [("color",), ("translation",), ("cutout",), ("color", "translation", "cutout")]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 4, c: int = 3, s: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, s, s, generator=gen(seed)) * 2 - 1


def assert_differentiable(x: torch.Tensor, fn) -> None:
    x = x.clone().requires_grad_()
    fn(x).float().square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


# ---- DiffAugment
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("policy", POLICIES)
def test_diffaugment_keeps_shape_dtype_and_is_differentiable(policy, dtype):
    x = images().to(dtype)
    out = diff_augment(x, policy, gen())
    assert out.shape == x.shape and out.dtype == dtype
    assert not torch.equal(out, x)
    assert_differentiable(x, lambda v: diff_augment(v, policy, gen()))
    for name in policy:                                                  # each op on its own too
        single = DIFFAUG_OPS[name](x, gen())
        assert single.shape == x.shape and single.dtype == dtype


def numpy_translate(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """(C, H, W): content moved dx right and dy down, zeros moved in."""
    out = np.zeros_like(img)
    _, h, w = img.shape
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[:, i, j] = img[:, i - dy, j - dx]
    return out


def test_translate_matches_numpy_reference():
    shifts = [(0, 0), (1, 0), (0, -1), (2, -3), (-5, 4), (15, 0), (-16, 3)]  # the last moves all out
    x = images(b=len(shifts), s=16)
    dx = torch.tensor([d[0] for d in shifts])
    dy = torch.tensor([d[1] for d in shifts])
    out = translate(x, dx, dy)
    for b, (sx, sy) in enumerate(shifts):
        np.testing.assert_array_equal(out[b].numpy(), numpy_translate(x[b].numpy(), sx, sy))
    assert (out[-1] == 0).all()


def test_rand_translation_moves_a_bright_pixel_by_at_most_an_eighth():
    s, b = 32, 64
    x = torch.full((b, 1, s, s), -1.0)
    x[:, :, 10, 20] = 1.0
    out = rand_translation(x, gen())
    seen = set()
    for k in range(b):
        (i, j), = (out[k, 0] == 1).nonzero().tolist()                   # exactly one bright pixel
        dy, dx = i - 10, j - 20
        assert max(abs(dx), abs(dy)) <= s // 8
        np.testing.assert_array_equal(out[k].numpy(), numpy_translate(x[k].numpy(), dx, dy))
        seen.add((dx, dy))
    # every sample its own shift: both extremes of the inclusive range occur, many pairs seen
    assert {d for d, _ in seen} >= {-(s // 8), s // 8} and len(seen) > 20


def test_rand_translation_range_is_the_references_rounded_eighth():
    # DiffAugment's reference code: shift = int(S * 0.125 + 0.5), dx, dy uniform in [-shift, shift].
    # At S = 28 that is +-4 (3.5 rounded), where S // 8 would stop at 3.
    s, b = 28, 512
    x = torch.full((b, 1, s, s), -1.0)
    x[:, :, 14, 14] = 1.0                                                # +-4 keeps it inside
    where = (rand_translation(x, gen())[:, 0] == 1).nonzero()           # (b, 3): sample, row, col
    assert where[:, 0].tolist() == list(range(b))                        # one bright pixel each
    dy, dx = where[:, 1] - 14, where[:, 2] - 14
    # 512 draws of 9 values: each occurs (missing one has probability < 1e-25), and never +-5
    assert set(dx.tolist()) == set(dy.tolist()) == set(range(-4, 5))


@pytest.mark.parametrize("s", [16, 17])
def test_cutout_zeros_one_clipped_square_and_nothing_else(s):
    side = int(s * 0.5 + 0.5)
    x = torch.rand(64, 3, s, s, generator=gen(1)) * 0.9 + 0.1           # no zeros of its own
    out = rand_cutout(x, gen())
    full = 0
    for k in range(64):
        hole = (out[k] == 0).all(dim=0)                                  # (H, W), all channels
        assert ((out[k] == 0) == hole).all()
        rows, cols = hole.any(dim=1).nonzero().flatten(), hole.any(dim=0).nonzero().flatten()
        area = int(hole.sum())
        assert 0 < area <= side * side
        assert area == len(rows) * len(cols)                             # a filled rectangle
        assert rows.tolist() == list(range(rows[0], rows[0] + len(rows)))
        assert cols.tolist() == list(range(cols[0], cols[0] + len(cols)))
        assert len(rows) == side or rows[0] == 0 or rows[-1] == s - 1   # shorter only at a border
        assert len(cols) == side or cols[0] == 0 or cols[-1] == s - 1
        full += area == side * side
        assert torch.equal(out[k][:, ~hole], x[k][:, ~hole])
    assert full > 0


def test_color_ops_match_closed_forms():
    const = torch.full((3, 3, 8, 8), 0.25)
    shift = torch.tensor([-0.5, 0.0, 0.3])
    assert torch.allclose(adjust_brightness(const, shift), 0.25 + shift.view(3, 1, 1, 1).expand(3, 3, 8, 8))
    # contrast scales around the image's own mean: a constant image has nothing to scale
    assert torch.allclose(adjust_contrast(const, torch.tensor([0.5, 1.0, 1.5])), const, atol=1e-7)
    two = torch.tensor([-1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)          # mean 0
    assert torch.allclose(adjust_contrast(two, torch.tensor([0.5])), two * 0.5)
    # saturation: no-op on grey (C = 1) and on grey RGB; factor 0 leaves the channel mean
    grey = images(c=1)
    assert torch.equal(adjust_saturation(grey, torch.full((4,), 1.7)), grey)
    rgb_grey = grey.expand(4, 3, 16, 16)
    assert torch.allclose(adjust_saturation(rgb_grey, torch.full((4,), 1.7)), rgb_grey, atol=1e-6)
    rgb = images()
    assert torch.allclose(adjust_saturation(rgb, torch.zeros(4)), rgb.mean(1, keepdim=True).expand_as(rgb))
    # the random op on constant grey RGB images: only brightness acts, U(-0.5, 0.5) per image
    out = rand_color(torch.full((32, 3, 8, 8), 0.1), gen())
    per_image = out.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
    assert ((per_image[:, 0] - 0.1).abs() <= 0.5).all()
    assert per_image[:, 0].unique().numel() == 32                        # each image its own shift


def test_same_seed_same_output_and_samples_differ():
    x = images(b=1).expand(16, 3, 16, 16).contiguous()                  # 16 copies of one image
    policy = ("color", "translation", "cutout")
    a, b = diff_augment(x, policy, gen(3)), diff_augment(x, policy, gen(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, diff_augment(x, policy, gen(4)))
    for name, op in DIFFAUG_OPS.items():
        out = op(x, gen()).flatten(1)
        assert out.unique(dim=0).shape[0] > 8, name                     # per-sample parameters


def test_parse_policy():
    assert parse_policy("translation,cutout") == ("translation", "cutout")
    assert parse_policy(" color, translation ,cutout") == ("color", "translation", "cutout")
    assert parse_policy("") == () and parse_policy("none") == ()
    with pytest.raises(BadInput, match=r"augment_policy='color,flip': unknown op 'flip'; choose from color"):
        parse_policy("color,flip")
    with pytest.raises(BadInput, match="augment_policy"):
        diff_augment(images(), ("zoom",))
    x = images()
    assert torch.equal(diff_augment(x, parse_policy("none")), x)


# ---- ADA
def ada(p: float, **kw) -> AdaptiveAugment:
    a = AdaptiveAugment(**kw)
    a.p.fill_(p)
    return a


def test_ada_p_zero_is_the_identity():
    x = images()
    assert AdaptiveAugment()(x, gen()) is x


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("c", [1, 3])
def test_ada_p_one_changes_most_images_differentiably(dtype, c):
    x = images(b=16, c=c).to(dtype)
    a = ada(1.0)
    out = a(x, gen())
    assert out.shape == x.shape and out.dtype == dtype
    changed = (out.float() - x.float()).flatten(1).abs().amax(1) > 1e-2
    assert changed.sum() >= 15
    assert torch.equal(out, a(x, gen()))                                 # seeded: reproducible
    assert_differentiable(x, lambda v: a(v, gen()))


def numpy_blit(img: np.ndarray, flip: bool, rot: int, dx: int, dy: int) -> np.ndarray:
    """(C, n, n): x-flip, rot90 by rot, then move by (dx, dy) with reflection padding."""
    img = np.rot90(img[:, :, ::-1] if flip else img, rot, axes=(1, 2))
    pad = 20
    padded = np.pad(img, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    n = img.shape[1]
    return padded[:, pad - dy:pad - dy + n, pad - dx:pad - dx + n]


def test_blit_matches_numpy_reference():
    params = [(f, r, dx, dy) for f in (False, True) for r in range(4) for dx, dy in ((0, 0), (2, -1), (-7, 15))]
    x = images(b=1, s=16).expand(len(params), 3, 16, 16)
    cols = [torch.tensor(col) for col in zip(*params)]
    out = blit(x, *cols)
    for k, (f, r, dx, dy) in enumerate(params):
        np.testing.assert_array_equal(out[k].numpy(), numpy_blit(x[k].numpy(), f, r, dx, dy))
        if dx == dy == 0:                                                # a permutation of pixels
            assert torch.equal(out[k].flatten(1).sort(1).values, x[k].flatten(1).sort(1).values)


def test_ada_blit_output_is_one_of_the_allowed_integer_transforms():
    s, b = 16, 8
    x = images(b=b, c=1, s=s)
    out = ada(1.0, ops="b")(x, gen())
    t = round(0.125 * s)
    params = [(f, r, dx, dy) for f in (False, True) for r in range(4)
              for dx in range(-t, t + 1) for dy in range(-t, t + 1)]
    cols = [torch.tensor(col) for col in zip(*params)]
    for k in range(b):
        candidates = blit(x[k:k + 1].expand(len(params), 1, s, s), *cols)
        assert (candidates == out[k]).flatten(1).all(1).any()            # exactly some transform
        assert torch.isin(out[k], x[k]).all()                            # values are input pixels


def test_geometric_identity_rotation_and_translation_are_exact():
    x = images(b=2, s=16)
    one, zero = torch.ones(2), torch.zeros(2)
    theta = geometric_matrix(one, zero, one, zero, zero)
    assert torch.equal(theta, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3))
    assert torch.allclose(resample(x, theta), x, atol=1e-5)
    # a quarter turn lands on pixel centres: torch.rot90 (clockwise on screen, y pointing down)
    quarter = resample(x, geometric_matrix(one, torch.full((2,), math.pi / 2), one, zero, zero))
    assert torch.allclose(quarter, torch.rot90(x, -1, (2, 3)), atol=1e-5)
    # a shift by 1/16 of a 16-pixel side is one column; reflection about the border edge
    moved = resample(x, geometric_matrix(one, zero, one, torch.full((2,), 1 / 16), zero))
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (0, 0), (1, 1)), mode="symmetric")[..., :16]
    assert torch.allclose(moved, torch.from_numpy(ref), atol=1e-5)


def test_geometric_matrix_inverts_the_composed_forward_transform():
    scale, angle, aniso, tx, ty = 1.3, 0.7, 0.8, 0.05, -0.1
    q = torch.tensor([0.3, -0.6])
    fwd = scale * q                                                      # isotropic scaling
    c, s = math.cos(angle), math.sin(angle)
    fwd = torch.stack([c * fwd[0] - s * fwd[1], s * fwd[0] + c * fwd[1]])   # rotation
    fwd = fwd * torch.tensor([aniso, 1 / aniso])                         # anisotropic scaling
    fwd = fwd + 2 * torch.tensor([tx, ty])                               # translation (of the side)
    theta = geometric_matrix(*(torch.tensor([v]) for v in (scale, angle, aniso, tx, ty)))[0]
    assert torch.allclose(theta[:, :2] @ fwd + theta[:, 2], q, atol=1e-6)
    assert torch.allclose(geometric_matrix(*(torch.tensor([v]) for v in (2.0, 0.0, 1.0, 0.0, 0.0))),
                          torch.tensor([[[0.5, 0, 0], [0, 0.5, 0]]]))


def test_ada_geometric_and_color_on_constant_images():
    const = torch.full((8, 3, 16, 16), 0.4)
    # reflection padding + bilinear weights summing to 1: a constant stays constant
    assert torch.allclose(ada(1.0, ops="g")(const, gen()), const, atol=1e-5)
    out = ada(1.0, ops="c")(const, gen()).flatten(1)                     # only brightness acts
    assert torch.allclose(out, out[:, :1].expand_as(out), atol=1e-6)
    assert out[:, 0].unique().numel() == 8


def test_ada_colour_is_the_reference_colour_matrix_contrast_about_zero(monkeypatch):
    """StyleGAN2-ADA (Karras et al. 2020, their augment.py) composes brightness b, contrast c and
    saturation s as one colour matrix on [-1, 1] data: contrast is a scale about 0 applied after
    brightness, x' = c (x + b), then saturation about the grey axis. Every normal draw is fixed
    to z and every uniform to 0 (each op applied at p = 1), so b, c and s are known numbers."""
    import ganvae.augment as aug

    z = 1.5
    monkeypatch.setattr(aug, "_draw", lambda shape, x, generator, normal=False: torch.full(shape, z if normal else 0.0))
    b, c, s = 0.2 * z, 2 ** (0.5 * z), 2 ** z                            # std 0.2, log2-std 0.5 and 1
    for channels in (1, 3):
        x = images(c=channels) * 0.5 + 0.3                               # per-image means far from 0
        want = c * (x + b)
        if channels == 3:                                                # grey images have no saturation
            grey = want.mean(1, keepdim=True)
            want = grey + s * (want - grey)
        torch.testing.assert_close(ada(1.0, ops="c")(x, gen()), want)


def test_ada_update_steers_p():
    a = AdaptiveAugment(target=0.6, interval=4, speed_images=100_000, p_max=0.8)
    for call in range(3):
        a.update(torch.ones(32))
        assert a.p.item() == 0.0                                         # not yet an interval
    a.update(torch.ones(32))                                             # r_t = 1 > 0.6
    assert a.p.item() == pytest.approx(32 * 4 / 100_000, rel=1e-6)
    for _ in range(8):
        a.update(-torch.ones(32, 1))                                     # r_t = -1 < 0.6
    assert a.p.item() == 0.0
    for _ in range(4):                                                   # r_t = 0.5 < 0.6: down, floor 0
        a.update(torch.tensor([1.0, -1.0]))
    assert a.p.item() == 0.0
    fast = AdaptiveAugment(interval=1, speed_images=100)
    for _ in range(50):
        fast.update(torch.ones(16))
    assert fast.p.item() == pytest.approx(0.8)


def test_ada_state_dict_resumes_exactly():
    a = AdaptiveAugment(interval=3, speed_images=1000)
    logits = torch.randn(20, 16, generator=gen()) + 1                 # r_t near 0.68: p moves both ways
    for row in logits[:7]:                                               # stop mid-interval
        a.update(row)
    state = a.state_dict()
    assert {"p", "sign_sum", "sign_count", "calls"} <= set(state)
    b = AdaptiveAugment(interval=3, speed_images=1000)
    b.load_state_dict(state)
    assert a.p.item() > 0 and a.calls.item() == 1 and a.sign_count.item() == 16
    assert all(torch.equal(b.get_buffer(k), a.get_buffer(k)) for k in state)
    for row in logits[7:]:
        a.update(row)
        b.update(row)
        assert torch.equal(a.p, b.p)


@pytest.mark.parametrize("kw, option", [
    (dict(ops="bxz"), "ada_ops"),
    (dict(target=0.0), "ada_target"),
    (dict(target=1.5), "ada_target"),
    (dict(interval=0), "ada_interval"),
    (dict(speed_images=0), "ada_speed_images"),
    (dict(p_max=1.2), "ada_p_max"),
])
def test_ada_bad_arguments(kw, option):
    with pytest.raises(BadInput, match=option):
        AdaptiveAugment(**kw)
