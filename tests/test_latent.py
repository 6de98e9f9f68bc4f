"""What latent spaces are worth (issue 15): the probe, compress / decompress and disentangle
commands and tasks on tiny real runs, compare's --sweep, and the report's "Latent space"."""

import json
import math

import numpy as np
import pytest
import torch

from ganvae.errors import BadInput
from ganvae.registry import expand_sweep
from tests.conftest import DATA, TINY


@pytest.mark.parametrize("preset,kind", [("vae", "encoder codes"), ("dcgan", "discriminator features")])
def test_probe_command_scores_the_features_beside_pixels_and_pca(preset, kind, runs, run_cli):
    code, out, err = run_cli("probe", runs[preset], "--per-class", "2,5", "--n-test", 64, "--seeds", 2)
    assert code == 0, err
    res = json.loads((runs[preset] / "eval.json").read_text())["tasks"]["probe"]
    assert res["result"]["features"] == kind
    curve = res["result"]["curve"]
    assert [r["per_class"] for r in curve] == [2, 5] and all(0 <= r["linear"] <= 1 for r in curve)
    assert all(r["linear_std"] is not None for r in curve)   # each seed draws its own labelled images
    names = [r["name"] for r in res["tables"][0]["rows"]]
    assert names[-1].startswith("pixels (784-d)") and "linear @5" in out
    # PCA with the code's size only where the features are narrower than the image (a VAE's 8-d code)
    assert any(n.startswith("PCA of the pixels, 8-d") for n in names) == (preset == "vae")


def test_probe_refuses_models_without_features_in_one_line(runs, run_cli):
    code, _, err = run_cli("probe", runs["pix2pix"])
    assert code == 2 and "does not apply to pix2pix" in err and len(err.strip().splitlines()) == 1


def test_compress_then_decompress_gives_the_decoder_output_of_the_quantised_codes(runs, run_cli, tmp_path):
    from ganvae.data import load_dataset
    from ganvae.metrics.codec import read_codes
    from ganvae.models.base import weights_fingerprint
    from ganvae.tasks.compress import decode_uint8
    from ganvae.trainer import load_run

    x = load_dataset(DATA).test.x[:12]
    np.savez(tmp_path / "in.npz", x=x)
    codes = tmp_path / "codes.npz"
    code, out, err = run_cli("compress", runs["ae"], tmp_path / "in.npz", "-o", codes, "--bits", 5, "--n-fit", 100)
    assert code == 0, err
    f = read_codes(codes)
    assert f.levels.shape == (12, 8) and f.quantizer.bits == 5 and f.meta["latent"] == 8
    assert "8 dims x 5 bits = 5 bytes per image" in out                    # ceil(8 * 5 / 8)
    code, _, err = run_cli("decompress", runs["ae"], codes, "-o", tmp_path / "dec")
    assert code == 0, err
    pngs = sorted((tmp_path / "dec").glob("*.png"))
    assert len(pngs) == 12
    model, _ = load_run(runs["ae"])
    want = decode_uint8(model, f.quantizer.decode(f.levels))
    from PIL import Image

    assert (np.asarray(Image.open(pngs[3]))[None] == want[3]).all()
    # the same folder again: refused, nothing overwritten; another model's latent size: refused
    code, _, err = run_cli("decompress", runs["ae"], codes, "-o", tmp_path / "dec")
    assert code == 2 and "already holds" in err
    code, _, err = run_cli("decompress", runs["vae"], tmp_path / "in.npz", "-o", tmp_path / "d2")
    assert code == 2 and "not a latent-codes file" in err and not (tmp_path / "d2").exists()
    # another model with codes of the same size (vae, 8 dims): its decoder would give other
    # images; the codes name the weights they were made with, so it is refused in one line
    assert f.meta["weights"] == weights_fingerprint(model)
    code, _, err = run_cli("decompress", runs["vae"], codes, "-o", tmp_path / "d3")
    assert code == 2 and "compressed with another model" in err and "Traceback" not in err
    assert not (tmp_path / "d3").exists()
    code, _, err = run_cli("compress", runs["ae"], tmp_path / "in.npz", "-o", tmp_path / "codes.bin")
    assert code == 2 and "must end in .npz" in err


def test_compress_task_rate_is_the_kl_in_bits_and_bytes_follow_the_bits(runs, monkeypatch, capfd):
    from ganvae.tasks import evaluate_tasks
    from ganvae.tasks.compress import CompressConfig

    monkeypatch.setenv("GANVAE_PROGRESS", "1")   # bars forced on (stderr is no terminal here)
    done = evaluate_tasks(runs["vae"], ("compress",), {"compress": CompressConfig(bits="2,8", n=40, n_fit=100)},
                          log=lambda m: None)
    err = capfd.readouterr().err                 # a bar for each encoding and decoding pass
    for what in ("encoding the test images", "encoding the fitting images", "decoding at 2 bits",
                 "decoding at 8 bits", "decoding float32 codes"):
        assert f"compress: {what}" in err, what
    res = done["tasks"]["compress"]["result"]
    assert [p["bytes"] for p in res["points"]] == [2, 8]                    # ceil(8 dims * b / 8)
    assert [p["bytes"] for p in res["pca"]] == [2, 8] and res["jpeg"] == [None, None]   # JPEG needs ~40 bytes
    rows = done["tasks"]["compress"]["tables"][0]["rows"]
    assert rows[-1]["name"].startswith("JPEG quality 1") and rows[-1]["bytes"] > 8
    assert any("decoding a sample z ~ q(z|x)" in r["name"] for r in rows)
    assert any("decoding the posterior mean" in r["name"] for r in rows)


def test_bits_back_point_is_a_known_kl_paired_with_the_decode_of_a_posterior_sample(runs):
    # A posterior of known form, q(z|x) = N(1, 0.5^2 I) for every image: its KL to N(0, I) is
    # D/2 (mu^2 + s^2 - 1 - ln s^2) nats (torch.distributions' own closed form checks it), and
    # what a bits-back coder sends is a draw of it, so the point's PSNR must be the decode of
    # 1 + 0.5 eps, not of the mean 1 (issue 30: the mean's decode was reported with the rate).
    from torch.distributions import Normal, kl_divergence

    from ganvae.metrics.codec import rate_distortion_point
    from ganvae.tasks.compress import CompressConfig, CompressTask, decode_uint8
    from ganvae.trainer import load_run, run_dataset

    model, cfg = load_run(runs["vae"])
    ds = run_dataset(cfg)
    d = model.config.latent
    model.encode_dist = lambda x, labels=None: (torch.ones(len(x), d), torch.full((len(x), d), math.log(0.25)))
    ccfg = CompressConfig(bits="4", n=40, n_fit=100, seed=7)
    res = CompressTask.run(model, ds, None, ccfg, CompressTask.prepare(ds, None, ccfg, log=lambda m: None),
                           log=lambda m: None)
    nats = d / 2 * (1 + 0.25 - 1 - math.log(0.25))
    assert nats == pytest.approx(float(kl_divergence(Normal(1.0, 0.5), Normal(0.0, 1.0))) * d)
    assert res["kl"]["bits"] == pytest.approx(nats / math.log(2), rel=1e-6)   # (float32 log-variance)
    test_x = ds.test.x[:40]
    eps = torch.randn(40, d, generator=torch.Generator().manual_seed(7))
    sent = rate_distortion_point(test_x, decode_uint8(model, (1 + 0.5 * eps).numpy()), 0)
    mean = rate_distortion_point(test_x, decode_uint8(model, np.ones((40, d), np.float32)), 0)
    assert res["kl"]["psnr"] == pytest.approx(sent["psnr"]) and res["kl"]["mse"] == pytest.approx(sent["mse"])
    assert res["kl"]["psnr_posterior_mean"] == pytest.approx(mean["psnr"])
    assert res["kl"]["psnr"] != pytest.approx(res["kl"]["psnr_posterior_mean"])


def test_disentangle_command_on_factors_data(tmp_path, run_cli, monkeypatch):
    run = tmp_path / "vae"
    code, _, err = run_cli("train", "vae", "--data", "factors:n=300,n_test=200", "--steps", 4, "--out", run, *TINY)
    assert code == 0, err
    monkeypatch.setenv("GANVAE_PROGRESS", "1")
    code, out, err = run_cli("disentangle", run, "-n", 200, "--figure", tmp_path / "t.png")
    assert code == 0, err
    assert "disentangle: encoding the test images" in err         # its bar
    res = json.loads((run / "eval.json").read_text())["tasks"]["disentangle"]["result"]
    for key in ("mig", "factor_vae", "dci_d", "dci_c", "dci_i"):
        assert 0 <= res[key] <= 1, key
    assert set(res["mig_per_factor"]) == {"shape", "scale", "rotation", "x", "y"}
    assert (tmp_path / "t.png").stat().st_size > 1000 and "rows: z" in out
    code, out, err = run_cli("traverse", run, "-o", tmp_path / "trav.png", "--dims", 3)
    assert code == 0 and out.count(" (MI ") + out.count("no factor") == 3, out   # each row names its factor
    # on data without factors: the total correlation alone
    code, out, err = run_cli("disentangle", run, "--data", DATA, "-n", 100)
    assert code == 0, err and "total correlation only" in err
    assert "Gaussian TC" in out and "MIG" not in out


def test_eval_shows_the_latent_summary_of_an_encoder_model(runs, run_cli):
    code, out, err = run_cli("eval", runs["vae"], "-n", 64, "--nll-k", 2, "--nll-images", 4)
    assert code == 0, err
    m = json.loads((runs["vae"] / "eval.json").read_text())["metrics"]
    assert m["latent_tc"] >= 0 and m["rate_bits"] > 0 and "mig" not in m   # shapes has no known factors


def test_sweep_makes_one_variant_per_value():
    assert expand_sweep(["vae", "ae:width=16"], "latent=2,4") == ["vae:latent=2", "vae:latent=4",
                                                                  "ae:width=16:latent=2", "ae:width=16:latent=4"]
    # the --set rule: a model without the key is compared once, unswept (ae has no beta)...
    assert expand_sweep(["vae", "ae:latent=4", "dcgan"], "beta=0.5,4") == ["vae:beta=0.5", "vae:beta=4",
                                                                            "ae:latent=4", "dcgan"]
    # ... and a key no model has is an error that suggests the nearest
    with pytest.raises(BadInput, match=r"^--sweep bta: no model of this comparison has that key \(ae, dcgan\)"):
        expand_sweep(["ae", "dcgan"], "bta=1,2")
    with pytest.raises(BadInput, match=r"\(did you mean 'beta'"):
        expand_sweep(["vae", "dcgan"], "bta=1,2")
    assert expand_sweep(["vae"], None) == ["vae"]
    for bad, msg in (("beta", "KEY=V1"), ("beta=", "KEY=V1"), ("beta=1,1", "named twice")):
        with pytest.raises(BadInput, match=msg):
            expand_sweep(["vae"], bad)
    with pytest.raises(BadInput, match="sets it already"):
        expand_sweep(["vae:beta=2"], "beta=1,4")


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_compare_report_has_the_latent_space_section(tmp_path, run_cli):
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", "--data", DATA, "--models", "ae,vae", "--sweep", "latent=4,8", "--steps", 3,
                           "--eval-n", 100, "--curve-points", 2, "--curve-n", 64, "--nll-k", 2, "--nll-images", 4,
                           "--tasks", "generate,probe,compress,disentangle", "--task-set", "probe.per_class=2,5",
                           "--task-set", "compress.n=40", "--task-set", "compress.n_fit=100",
                           "--task-set", "disentangle.n=100", "--out", out, "--set", "width=8", *TINY[4:])
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert html.count('id="group-latent-space"') == 1
    for task in ("probe", "compress", "disentangle"):
        assert f'id="task-{task}"' in html
    assert 'alt="Latent space: compression (rate and distortion)"' in html   # the rate-distortion figure
    for model in ("ae:latent=4", "vae:latent=8"):
        assert model in html


def test_a_fresh_process_knows_the_latent_tasks():
    """The tasks register on import: a new process (as the CLI is) finds all three by name."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "from ganvae.tasks import parse_tasks; "
                        "print(parse_tasks('probe,compress,disentangle'))"], capture_output=True, text=True)
    assert r.returncode == 0 and "compress" in r.stdout, r.stderr
