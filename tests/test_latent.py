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
    from ganvae.bitstreams import GQ_HEADER, read_quantised
    from ganvae.data import load_dataset
    from ganvae.tasks.compress import decode_uint8
    from ganvae.trainer import load_run

    x = load_dataset(DATA).test.x[:12]
    np.savez(tmp_path / "in.npz", x=x)
    codes = tmp_path / "codes.gvc"
    code, out, err = run_cli("compress", runs["ae"], tmp_path / "in.npz", "-o", codes, "--bits", 5, "--n-fit", 100)
    assert code == 0, err
    model, _ = load_run(runs["ae"])
    data = codes.read_bytes()
    lv, levels, shape = read_quantised(model, data)
    assert lv.shape == (12, 8) and levels.quantizer.bits == 5 and shape == (1, 28, 28)
    # the levels are the quantiser's of the encoder's codes, bit for bit
    with torch.no_grad():
        z = model.encode(torch.from_numpy(x).float().div(127.5).sub(1)).double().numpy()
    assert (lv == levels.quantizer.encode(z)).all()
    # the rate printed is the file's size
    assert f"12 images in {len(data):,} bytes = {len(data) / 12:.1f} bytes per image" in out
    assert "8 dims x 5 bits, entropy-coded" in out
    code, _, err = run_cli("decompress", runs["ae"], codes, "-o", tmp_path / "dec")
    assert code == 0, err
    pngs = sorted((tmp_path / "dec").glob("*.png"))
    assert len(pngs) == 12
    want = decode_uint8(model, levels.quantizer.decode(lv))
    from PIL import Image

    assert (np.asarray(Image.open(pngs[3]))[None] == want[3]).all()
    # the same folder again: refused, nothing overwritten; a file that is not one: refused
    code, _, err = run_cli("decompress", runs["ae"], codes, "-o", tmp_path / "dec")
    assert code == 2 and "already holds" in err
    (tmp_path / "junk.gvc").write_bytes(b"hello world!")
    code, _, err = run_cli("decompress", runs["vae"], tmp_path / "junk.gvc", "-o", tmp_path / "d2")
    assert code == 2 and "junk.gvc: not a ganvae compressed file" in err and not (tmp_path / "d2").exists()
    # another model with codes of the same size (vae, 8 dims): its decoder would give other
    # images; the file names the weights it was made with, so it is refused in one line
    code, _, err = run_cli("decompress", runs["vae"], codes, "-o", tmp_path / "d3")
    assert code == 2 and "made by another model" in err and "Traceback" not in err
    assert not (tmp_path / "d3").exists()
    # a truncated file: one line, nothing written
    (tmp_path / "cut.gvc").write_bytes(data[:GQ_HEADER.size + 3])
    code, _, err = run_cli("decompress", runs["ae"], tmp_path / "cut.gvc", "-o", tmp_path / "d4")
    assert code == 2 and "cut.gvc:" in err and "Traceback" not in err and not (tmp_path / "d4").exists()
    code, _, err = run_cli("decompress", runs["ae"], tmp_path / "none.gvc", "-o", tmp_path / "d5")
    assert code == 2 and "none.gvc: no such file" in err


def test_a_learned_codec_writes_its_own_bitstream_and_decodes_it_to_its_reconstruction(runs, run_cli, tmp_path):
    from ganvae.data import load_dataset, to_float, to_uint8
    from ganvae.trainer import load_run

    x = load_dataset(DATA).test.x[:9]
    np.savez(tmp_path / "in.npz", x=x)
    code, out, err = run_cli("compress", runs["codec"], tmp_path / "in.npz", "-o", tmp_path / "c.gvc")
    assert code == 0, err
    model, _ = load_run(runs["codec"])
    xf = to_float(torch.from_numpy(x))
    data = (tmp_path / "c.gvc").read_bytes()
    assert data == model.compress(xf) and f"9 images in {len(data):,} bytes" in out
    code, _, err = run_cli("decompress", runs["codec"], tmp_path / "c.gvc", "-o", tmp_path / "d.npz")
    assert code == 0, err
    with np.load(tmp_path / "d.npz") as f:
        assert (f["x"] == to_uint8(model.reconstruct(xf)).numpy()).all()
    code, _, err = run_cli("decompress", runs["ae"], tmp_path / "c.gvc", "-o", tmp_path / "d2.npz")
    assert code == 2 and "written by a learned codec" in err and not (tmp_path / "d2.npz").exists()


@pytest.mark.parametrize("bits", [1, 3, 10])
def test_a_quantised_files_payload_is_the_ideal_code_length_of_its_levels(runs, bits):
    from ganvae.bitstreams import LevelModel, compress, decompress, read_quantised
    from ganvae.data import load_dataset
    from ganvae.tasks.compress import decode_uint8
    from ganvae.trainer import load_run

    model, _ = load_run(runs["vae"])
    ds = load_dataset(DATA)
    fit = ds.train.x[:300]
    levels = LevelModel.fit(model, fit, bits)
    # each dimension's histogram counts every fitting image's level once
    assert (levels.counts.astype(int).sum(1) == len(fit)).all()
    out = compress(model, ds.test.x[:200], levels=levels)
    lv, back, _ = read_quantised(model, out.data)
    assert (back.counts == levels.counts).all() and (back.quantizer.lo == levels.quantizer.lo).all()
    rows = np.broadcast_to(np.arange(lv.shape[1]), lv.shape)
    ideal = levels.table().ideal_bits(lv, rows)
    # rANS: within a few 32-bit words of the ideal length (its state, the last word's padding)
    assert ideal <= out.payload * 8 <= ideal + 96
    assert (decompress(model, out.data) == decode_uint8(model, levels.quantizer.decode(lv))).all()


def test_histograms_fitted_on_more_images_than_uint16_holds_keep_their_shape(runs):
    from ganvae.bitstreams import COUNT_MAX, LevelModel
    from ganvae.data import load_dataset
    from ganvae.trainer import load_run

    model, _ = load_run(runs["ae"])
    from ganvae.evaluation import model_features

    x = np.repeat(load_dataset(DATA).train.x[:100], 700, axis=0)            # 70,000 images
    big = LevelModel.fit(model, x, 2)
    assert big.counts.astype(int).sum(1).max() <= COUNT_MAX
    lv = big.quantizer.encode(model_features(model, x[::700])[1]).astype(int)
    exact = np.stack([np.bincount(lv[:, j], minlength=4) for j in range(lv.shape[1])]) / 100
    np.testing.assert_allclose(big.counts / big.counts.sum(1, keepdims=True), exact, atol=1e-4)


def test_decompress_still_reads_the_packed_codes_npz_of_earlier_versions(runs, run_cli, tmp_path):
    from ganvae.data import load_dataset
    from ganvae.evaluation import model_features
    from ganvae.metrics.codec import Quantizer, write_codes
    from ganvae.models.base import weights_fingerprint
    from ganvae.tasks.compress import decode_uint8
    from ganvae.trainer import load_run

    model, _ = load_run(runs["ae"])
    x = load_dataset(DATA).test.x[:5]
    z = model_features(model, x)[1]
    q = Quantizer.fit(z, 4)
    write_codes(tmp_path / "old.npz", q.encode(z), q, {"weights": weights_fingerprint(model), "names": list("abcde")})
    code, _, err = run_cli("decompress", runs["ae"], tmp_path / "old.npz", "-o", tmp_path / "dec.npz")
    assert code == 0, err
    with np.load(tmp_path / "dec.npz") as f:
        assert (f["x"] == decode_uint8(model, q.decode(q.encode(z)))).all()
    code, _, err = run_cli("decompress", runs["vae"], tmp_path / "old.npz", "-o", tmp_path / "d2")
    assert code == 2 and "compressed with another model" in err


def test_compress_task_scores_real_files_beside_jpeg_webp_png_and_the_kl_rate(runs, monkeypatch, capfd):
    from ganvae.bitstreams import LevelModel, compress_quantised
    from ganvae.evaluation import model_features
    from ganvae.tasks import evaluate_tasks
    from ganvae.tasks.compress import CompressConfig, _rows
    from ganvae.trainer import load_run, run_dataset

    monkeypatch.setenv("GANVAE_PROGRESS", "1")   # bars forced on (stderr is no terminal here)
    cfg = CompressConfig(bits="2,8", n=40, n_fit=100)
    done = evaluate_tasks(runs["vae"], ("compress",), {"compress": cfg}, log=lambda m: None)
    err = capfd.readouterr().err                 # a bar for each encoding pass
    for what in ("encoding the test images", "encoding the fitting images", "decoding float32 codes"):
        assert f"compress: {what}" in err, what
    task = done["tasks"]["compress"]
    res = task["result"]
    assert [p["bits"] for p in res["points"]] == [2, 8] and [p["packed_bytes"] for p in res["points"]] == [2, 8]
    # each point's bytes are a real file's: the same file made here has that payload
    model, run_cfg = load_run(runs["vae"])
    ds = run_dataset(run_cfg)
    fit = model_features(model, ds.train.x[_rows(len(ds.train), 100, 0)])[1]
    f = compress_quantised(model, ds.test.x[:40], LevelModel.from_codes(fit, 2))
    assert res["points"][0]["bytes"] == f.payload / 40 and res["points"][0]["file_bytes"] == len(f.data) / 40
    for p in res["points"]:
        assert 0 < p["ms_ssim"] <= 1 and p["fd"] >= 0 and 0 <= p["accuracy"] <= 1
    assert [p["bytes"] for p in res["pca"]] == [2, 8]
    # JPEG's and WebP's smallest files are far above a few bytes: no point matched there
    assert res["matched"]["jpeg"] == [None, None] and res["matched"]["webp"] == [None, None]
    rows = task["tables"][0]["rows"]
    names = [r["name"] for r in rows]
    assert any(n.startswith("JPEG quality 1, its smallest") for n in names)
    assert any(n.startswith("WebP quality 0, its smallest") for n in names)
    png = next(r for r in rows if r["name"] == "PNG (lossless)")
    assert png["file_bytes"] > png["bytes"] > 0
    floor = next(r for r in rows if r["kind"] == "floor")
    assert floor["fd"] >= 0 and 0 <= floor["accuracy"] <= 1
    assert any("decoding a sample z ~ q(z|x)" in n for n in names)
    assert any("decoding the posterior mean" in n for n in names)

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
    # a codec's rate-distortion curve: lmbda swept over both codecs, the VAE compared once
    assert expand_sweep(["codec", "codec-gan", "vae"], "lmbda=0.1,1") == [
        "codec:lmbda=0.1", "codec:lmbda=1", "codec-gan:lmbda=0.1", "codec-gan:lmbda=1", "vae"]
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


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_compare_sweeps_lmbda_into_one_codec_curve_with_real_files(tmp_path, run_cli):
    out = tmp_path / "rd"
    code, stdout, err = run_cli("compare", "--data", DATA, "--models", "codec,codec-gan", "--sweep", "lmbda=0.1,4",
                                "--steps", 3, "--eval-n", 100, "--curve-points", 2, "--curve-n", 64,
                                "--tasks", "generate,compress", "--task-set", "compress.n=40",
                                "--task-set", "compress.n_fit=100", "--out", out, "--set", "width=8", *TINY[4:])
    assert code == 0, err
    html = (out / "report.html").read_text()
    for model in ("codec:lmbda=0.1", "codec:lmbda=4", "codec-gan:lmbda=0.1", "codec-gan:lmbda=4"):
        assert model in html
    # the findings read the two codecs' curves at the reference rates, codec-gan against codec
    assert "payload bytes per image (curves interpolated in log bytes)" in html
    assert "codec-gan at " in html
    res = json.loads((out / "runs" / "codec_lmbda=4-seed0" / "tasks" / "compress.json").read_text())
    point = res["points"][0]
    assert point["label"] == "entropy-coded file" and point["file_bytes"] > point["bytes"] > 0


def test_a_fresh_process_knows_the_latent_tasks():
    """The tasks register on import: a new process (as the CLI is) finds all three by name."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "from ganvae.tasks import parse_tasks; "
                        "print(parse_tasks('probe,compress,disentangle'))"], capture_output=True, text=True)
    assert r.returncode == 0 and "compress" in r.stdout, r.stderr


def test_compress_findings_read_each_family_curve_at_equal_bytes():
    """A sweep's points form one curve per preset; PSNR and FD at a rate are interpolated
    linearly in log bytes; codec-gan is set against codec's curve at its own bytes."""
    from ganvae.tasks.compress import CompressTask

    def point(b, psnr, fd):
        return {"label": "entropy-coded file", "bytes": b, "psnr": psnr, "fd": fd}

    results = {"codec:lmbda=0.1": [{"points": [point(10.0, 20.0, 8.0)]}],
               "codec:lmbda=1": [{"points": [point(40.0, 26.0, 4.0)]}],
               "codec-gan:lmbda=0.1": [{"points": [point(20.0, 22.0, 3.0)]}],
               "ae": [{"points": [point(16.0, 15.0, 9.0), point(64.0, 18.0, 7.0)], "dims": 8}]}
    prepared = {"curves": {"jpeg": [point(40.0, 18.0, 6.0), point(80.0, 21.0, 5.0)]}}
    lines = CompressTask.findings(prepared, results)
    # 20 bytes is halfway between 10 and 40 in log2: 1 of 2 octaves -> 20 + 6 / 2 = 23 dB
    at20 = next(line for line in lines if line.startswith("At 20 payload bytes"))
    assert "codec 23.00 dB" in at20 and "codec-gan 22.00 dB" in at20 and "JPEG none" in at20
    assert "ae 15.48 dB" in at20          # 16 -> 64 is 2 octaves; 20 is log2(1.25) = 0.32 of one: 15 + 3 * 0.32 / 2
    at64 = next(line for line in lines if line.startswith("At 64 payload"))
    assert "codec none" in at64 and "ae 18.00 dB" in at64 and "JPEG 20.03 dB" in at64
    gan = next(line for line in lines if line.startswith("codec-gan at 20.0 bytes"))
    assert "FD 3.00 against codec's 6.00 at the same bytes (lower)" in gan
    assert "PSNR 22.00 dB against 23.00 (-1.00 dB)" in gan
