"""The learned codec (models/codec.py) and its entropy coder (entropy.py): GDN, the factorized
density, the Gaussian conditional against scipy, real bitstreams that decode to reconstruct(x)
and whose length is the estimated rate, training through the trainer, saving, bad configs."""

import math

import numpy as np
import pytest
import torch

from ganvae.config import replace
from ganvae.entropy import Decoder, PmfTable, encode, gaussian_table
from ganvae.errors import BadInput, GanvaeError
from ganvae.models import Codec, CodecConfig, GenerativeModel
from ganvae.models.codec import GDN, HEADER, SCALES, EntropyBottleneck, gaussian_likelihood

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(hyperprior=False, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = CodecConfig(channels=kw.pop("channels", 1), size=kw.pop("size", 28), width=kw.pop("width", 8),
                      latent_channels=kw.pop("latent_channels", 4), hyperprior=hyperprior, **kw)
    return Codec(cfg)


def images(n, seed=0, c=1, size=28):
    """Smooth random images in [-1, 1]: a few blurred blobs, so a briefly trained codec sees
    something like what it trained on."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, size // 4, size // 4, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def trained():
    """Both codecs after 24 steps on smooth images (their densities have left the initial ones)."""
    out = {}
    for hyper in (False, True):
        model = tiny(hyper, lmbda=0.05)
        x = images(256, seed=1)
        for step in range(24):
            model.train_step(x[(step % 16) * 16:(step % 16 + 1) * 16], step)
        out[hyper] = model.eval()
    return out


# ------------------------------------------------------------------------------ building blocks

def test_gdn_against_a_hand_computation():
    gdn, igdn = GDN(2), GDN(2, inverse=True)
    beta, gamma = torch.tensor([1.0, 2.0]), torch.tensor([[0.1, 0.2], [0.3, 0.4]])
    for m in (gdn, igdn):
        with torch.no_grad():   # stored as sqrt(value + pedestal): the reparameterisation
            m.beta_p.copy_(torch.sqrt(beta + m.PEDESTAL))
            m.gamma_p.copy_(torch.sqrt(gamma + m.PEDESTAL))
        torch.testing.assert_close(m.beta, beta)
        torch.testing.assert_close(m.gamma, gamma)
    x = torch.tensor([1.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, 3, 3)
    # y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)
    want = torch.tensor([1.0 / math.sqrt(1 + 0.1 * 1 + 0.2 * 4), -2.0 / math.sqrt(2 + 0.3 * 1 + 0.4 * 4)])
    torch.testing.assert_close(gdn(x)[0, :, 1, 2], want)
    torch.testing.assert_close(igdn(x)[0, :, 0, 0], torch.tensor([math.sqrt(1.9), -2 * math.sqrt(3.9)]))
    # the reparameterisation keeps gamma >= 0 and beta >= 1e-6 whatever the stored values do, and
    # a gradient that would raise a value stuck at its bound still reaches it
    with torch.no_grad():
        gdn.gamma_p.fill_(-3.0)
        gdn.beta_p.fill_(0.0)
    assert (gdn.gamma == 0).all() and torch.allclose(gdn.beta, torch.full((2,), 1e-6))
    (-gdn.gamma.sum() - gdn.beta.sum()).backward()
    assert (gdn.gamma_p.grad != 0).all() and (gdn.beta_p.grad != 0).all()


def test_bottleneck_likelihoods_sum_to_one_and_are_cdf_differences():
    torch.manual_seed(0)
    eb = EntropyBottleneck(3)
    with torch.no_grad():   # move it off its initial symmetric shape
        for p in eb.parameters():
            p.add_(0.3 * torch.randn_like(p))
    for shift in (0.0, 0.37):
        k = torch.arange(-400, 401, dtype=torch.float64) + shift                         # (K,)
        y = k.view(1, 1, -1, 1).expand(1, 3, -1, 1)                                       # (1, 3, K, 1)
        p = eb.likelihood(y)[0, :, :, 0]                                                  # (3, K)
        torch.testing.assert_close(p.sum(1), torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)
        cdf = lambda v: torch.sigmoid(eb.logits(v.view(1, 1, -1).expand(3, 1, -1)))[:, 0]  # (3, K)
        diff = cdf(k + 0.5) - cdf(k - 0.5)
        big = diff > 1e-6
        torch.testing.assert_close(p[big], diff[big], rtol=1e-9, atol=0)
    m = eb.medians()
    torch.testing.assert_close(torch.sigmoid(eb.logits(m.view(3, 1, 1)))[:, 0, 0],
                               torch.full((3,), 0.5, dtype=torch.float64), atol=1e-9, rtol=0)
    # the coding table: each row is that pmf around the median plus the two tails, summing to 1
    med, table = eb.coding_table()
    for c in range(3):
        row = table.pmfs[c]
        assert row.sum() == pytest.approx(1.0, abs=1e-9) and row[0] <= 1e-6 and row[-1] <= 1e-6
        s = torch.arange(int(table.lo[c]), int(table.hi[c]) + 1, dtype=torch.float64)
        y = (s + med[c]).view(1, 1, -1, 1).expand(1, 3, -1, 1)
        np.testing.assert_allclose(row[1:-1], eb.likelihood(y)[0, c, :, 0].detach().numpy(), rtol=1e-12)


def test_gaussian_conditional_against_scipy():
    from scipy.stats import norm

    g = torch.Generator().manual_seed(0)
    y = torch.cat([torch.randint(-12, 13, (200,), generator=g).double(), torch.rand(100, generator=g).double() * 20 - 10])
    sigma = 0.11 + torch.rand(300, generator=g).double() * 8
    # Phi((y + 1/2) / s) - Phi((y - 1/2) / s), for y > 0 as the same difference of upper tails
    # (norm.sf), where the two cdf values near 1 would leave scipy's difference few digits
    want = np.where(y > 0, norm.sf((y - 0.5) / sigma) - norm.sf((y + 0.5) / sigma),
                    norm.cdf((y + 0.5) / sigma) - norm.cdf((y - 0.5) / sigma))
    got = gaussian_likelihood(y, sigma).numpy()
    keep = want > 1e-9
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-7)   # two float64 ndtr implementations
    assert (got[~keep] == 1e-9).all()                     # the lower bound
    # float32 deep in a tail: the mirrored form keeps its digits where 1 - 1 would not
    tail = gaussian_likelihood(torch.tensor([5.0]), torch.tensor([1.0])).item()
    assert tail == pytest.approx(norm.cdf(5.5) - norm.cdf(4.5), rel=1e-4)
    # the coding table of a scale: the same pmf, with the tails lumped at the ends
    table = gaussian_table(SCALES[[0, 30, 63]])
    for s, lo, row in zip(SCALES[[0, 30, 63]], table.lo, table.pmfs):
        k = np.arange(lo, -lo + 1)
        np.testing.assert_allclose(row[1:-1], norm.cdf((k + 0.5) / s) - norm.cdf((k - 0.5) / s), rtol=1e-9, atol=1e-300)
        assert row.sum() == pytest.approx(1.0, abs=1e-12) and row[0] == row[-1] <= 1e-6


# ------------------------------------------------------------------------------ entropy coder

def test_entropy_coder_round_trips_every_integer_escapes_included():
    table = PmfTable(lo=np.array([-2, 0]), pmfs=(np.array([1e-6, 0.2, 0.6, 0.2, 1e-6]), np.array([0.0, 0.9, 0.1, 0.0])))
    rng = np.random.default_rng(0)
    values = rng.integers(-2, 1, 5000)
    values[::97] = rng.integers(-2**30, 2**30, len(values[::97]))            # far outside: escapes
    rows = rng.integers(0, 2, 5000)
    other = rng.integers(-1, 2, 300)
    data = encode([(values, rows, table), (other, np.zeros(300, np.int64), table)])
    dec = Decoder(data)
    np.testing.assert_array_equal(dec.decode(rows, table), values)
    np.testing.assert_array_equal(dec.decode(np.zeros(300, np.int64), table), other)
    dec.finish()
    # near-optimal on values drawn from the pmf: within 0.1% and 64 bits of the ideal length
    p = table.pmfs[0] / table.pmfs[0].sum()
    values = rng.choice(np.arange(-3, 2), size=50_000, p=p)
    rows = np.zeros_like(values)
    bits = 8 * len(encode([(values, rows, table)]))
    assert abs(bits - table.ideal_bits(values, rows)) <= 0.001 * bits + 64
    with pytest.raises(GanvaeError, match="damaged stream"):
        Decoder(data[:-3])
    with pytest.raises(GanvaeError, match="damaged stream"):
        d = Decoder(data)
        d.decode(rows[:10], table)
        d.finish()


# ------------------------------------------------------------------------------ the model

@pytest.mark.parametrize("size,channels", [(28, 1), (30, 1), (32, 3), (64, 3)])
def test_shapes_round_trip_exactly(size, channels):
    model = tiny(size=size, channels=channels, width=4, latent_channels=2).eval()
    x = images(2, c=channels, size=size)
    side = math.ceil(size / 4)
    assert model.latent_shape == (2, side, side) and model.config.latent == 2 * side * side
    z = model.encode(x)
    assert z.shape == (2, model.config.latent) and torch.equal(z, z.round())
    rec = model.reconstruct(x)
    assert rec.shape == x.shape and rec.abs().max() <= 1
    assert torch.equal(model.decode(z), rec)


@pytest.mark.parametrize("hyper", [False, True], ids=["codec", "codec-hyper"])
def test_compress_decompress_is_reconstruct_and_its_length_is_the_rate(trained, hyper):
    model = trained[hyper]
    x = images(64, seed=2)
    data = model.compress(x)
    assert data[:2] == b"GC" and HEADER.size == 24
    assert torch.equal(model.decompress(data), model.reconstruct(x))
    assert torch.equal(model.decompress_codes(data).flatten(1), model.encode(x))
    # The stream against the model's estimate: ANS with 24-bit probabilities is within ~0.01% of
    # -log2 p, and flushing its state costs at most two 32-bit words; the tables differ from the
    # continuous likelihoods only by the tails lumped into escapes (<= 1e-6 of the mass) and,
    # with the hyperprior, by coding with the nearest of the 64 scales (< 0.01 bit per latent).
    # So 1% (plus the 24-byte header and 64 bits) is a wide margin.
    stream_bits = 8 * (len(data) - HEADER.size)
    estimate = model.rate_bits(x).sum().item()
    assert abs(stream_bits - estimate) <= 0.01 * estimate + 64, (stream_bits, estimate)


def test_escaped_codes_still_round_trip(trained):
    model = trained[False]
    x = images(4, seed=3)
    with torch.no_grad():          # latents far outside the density's support: escapes
        model.g_a[-1].weight.mul_(1e3)
    try:
        codes = model.encode(x)
        _, table = model.prior.coding_table()
        assert (codes.view(4, *model.latent_shape) > torch.from_numpy(table.hi).view(1, -1, 1, 1)).any()
        data = model.compress(x)
        assert torch.equal(model.decompress_codes(data).flatten(1), codes)
        assert torch.equal(model.decompress(data), model.reconstruct(x))
    finally:
        with torch.no_grad():
            model.g_a[-1].weight.div_(1e3)


def test_decompress_refuses_another_models_file(trained):
    data = trained[False].compress(images(2))
    with pytest.raises(BadInput, match="another model"):
        trained[True].decompress(data)
    with pytest.raises(BadInput, match="not a codec file"):
        trained[False].decompress(b"JFIF" + data)
    with pytest.raises(GanvaeError, match="damaged stream"):
        trained[False].decompress(data[:-1])
    with pytest.raises(BadInput, match=r"expected images \(N, 1, 28, 28\)"):
        trained[False].compress(torch.zeros(2, 3, 28, 28))


def test_sample_prior_nll_and_the_contract(trained):
    for model in trained.values():
        a, b = model.sample(5, seed=3), model.sample(5, seed=3)
        assert a.shape == (5, 1, 28, 28) and torch.equal(a, b) and a.abs().max() <= 1
        z = model.encode(images(3)).requires_grad_(True)
        nll = model.latent_nll(z)
        assert nll.shape == (3,) and torch.isfinite(nll).all()
        nll.sum().backward()
        assert torch.isfinite(z.grad).all()
        z2 = z.detach().clone().requires_grad_(True)
        model.decode(z2).sum().backward()
        assert z2.grad.abs().sum() > 0
    assert Codec.has_encoder and not Codec.gaussian_latent


def test_loss_is_rate_plus_lambda_times_mse():
    """Ballé 2017 eq. 2 with the units the config says: bits per image + lambda * 8-bit MSE;
    and lambda weighs the distortion's gradient against the rate's by exactly that factor."""
    x = images(8)
    logs, grads = {}, {}
    for lmbda in (0.5, 2.0):
        model = tiny(lmbda=lmbda, lr=1e-12)          # a step that changes (almost) nothing
        torch.manual_seed(5)                         # the same noise in both
        out = model.train_step(x, 0)
        assert out["loss/total"].item() == pytest.approx(out["loss/rate_bits"].item() + lmbda * out["loss/mse"].item(),
                                                         rel=1e-6)
        # the mean of per-image PSNRs, at least the PSNR of the mean MSE (Jensen)
        assert out["loss/psnr"].item() >= 10 * math.log10(255**2 / out["loss/mse"].item()) - 1e-4
        logs[lmbda] = out
        grads[lmbda] = model.g_s[-1].bias.grad.clone()   # only the distortion reaches g_s's last bias
    for key in ("loss/rate_bits", "loss/mse"):
        assert logs[0.5][key].item() == pytest.approx(logs[2.0][key].item(), rel=1e-5)
    torch.testing.assert_close(grads[2.0], 4 * grads[0.5], rtol=1e-4, atol=1e-9)


def test_trains_through_the_trainer_and_saves_to_identical_bytes(tmp_path):
    import ganvae

    run, summary = ganvae.train("codec-hyper", "shapes:n=256,n_test=64", tmp_path / "run", steps=5, batch_size=16,
                                overrides={"width": 8}, progress=False)
    model = ganvae.load(run)
    assert type(model) is Codec and model.config.hyperprior
    x = images(16, seed=4)
    data = model.compress(x)
    again = GenerativeModel.from_pretrained(model.save_pretrained(tmp_path / "saved"))
    assert again.compress(x) == data
    assert torch.equal(again.decompress(data), model.decompress(data))


@pytest.mark.parametrize("field,value,msg", [("lmbda", 0.0, "lmbda=0.0: must be a positive"),
                                             ("lmbda", -1.0, "lmbda=-1.0"),
                                             ("latent_channels", 0, "latent_channels=0: must be at least 1"),
                                             ("hyper_channels", 0, "hyper_channels=0"),
                                             ("arch", "resnet", "own GDN transforms")])
def test_bad_configs_are_one_line_errors(field, value, msg):
    from ganvae.registry import resolve

    cls, cfg = resolve("codec")
    with pytest.raises(BadInput, match=msg) as e:
        cls(replace(cfg, {field: value}))
    assert "\n" not in str(e.value)
