"""`ganvae datasets download` against a loopback HTTP server serving files the test writes."""

import dataclasses
import gzip
import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest

from ganvae.data import load_dataset
from ganvae.data.idx import write_idx
from ganvae.data.named import NAMED


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields (base URL, served dir, sha256 per stem)."""
    www = tmp_path / "www"
    www.mkdir()
    rng = np.random.default_rng(0)
    sums = {}
    for stem, n in (("train", 20), ("t10k", 8)):
        for kind, arr in (("images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
                          ("labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))):
            name = f"{stem}-{kind}"
            write_idx(www / f"{name}.gz", arr)
            with gzip.open(www / f"{name}.gz") as f:
                sums[name] = hashlib.sha256(f.read()).hexdigest()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www, sums
    httpd.shutdown()
    httpd.server_close()


def _inject(monkeypatch, sums):
    monkeypatch.setitem(NAMED, "mnist", dataclasses.replace(NAMED["mnist"], sha256=sums))


def test_download_verifies_and_loads(server, tmp_path, monkeypatch, run_cli):
    url, _, sums = server
    _inject(monkeypatch, sums)
    dest = tmp_path / "cache"
    code, out, err = run_cli("datasets", "download", "mnist", "--mirror", url, "--dir", dest)
    assert code == 0, err
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{s}.gz" for s in sums)
    ds = load_dataset("mnist", data_dir=dest)
    assert len(ds.train) == 20 and len(ds.test) == 8
    # a second run finds the files verified and downloads nothing
    code, _, err = run_cli("datasets", "download", "mnist", "--mirror", url, "--dir", dest)
    assert code == 0 and err.count("already present and verified") == 4


def test_download_into_cache_is_found_by_default(server, tmp_path, monkeypatch, run_cli):
    url, _, sums = server
    _inject(monkeypatch, sums)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GANVAE_DATA", raising=False)
    monkeypatch.delenv("GANVAE_CACHE", raising=False)   # (the tests' own cache root otherwise)
    assert run_cli("datasets", "download", "mnist", "--mirror", url)[0] == 0
    assert load_dataset("mnist").source == str(tmp_path / ".cache/ganvae/mnist")


def test_wrong_checksum_keeps_nothing(server, tmp_path, monkeypatch, run_cli):
    url, _, sums = server
    bad = dict(sums, **{"t10k-images-idx3-ubyte": "0" * 64})
    _inject(monkeypatch, bad)
    dest = tmp_path / "cache"
    code, _, err = run_cli("datasets", "download", "mnist", "--mirror", url, "--dir", dest)
    assert code == 1
    assert "SHA-256 mismatch" in err and "t10k-images-idx3-ubyte.gz" in err and "Traceback" not in err
    assert not (dest / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temporary left


def test_missing_file_on_server(server, tmp_path, monkeypatch, run_cli):
    url, www, sums = server
    _inject(monkeypatch, sums)
    (www / "train-labels-idx1-ubyte.gz").unlink()
    code, _, err = run_cli("datasets", "download", "mnist", "--mirror", url, "--dir", tmp_path / "c")
    assert code == 1 and "HTTP 404" in err


def test_unreachable_server(tmp_path, run_cli):
    code, _, err = run_cli("datasets", "download", "mnist", "--mirror", "http://127.0.0.1:9",
                           "--dir", tmp_path / "c", "--timeout", "5")
    assert code == 1 and "download failed" in err


def test_unknown_name(run_cli, tmp_path):
    code, _, err = run_cli("datasets", "download", "cifar", "--dir", tmp_path)
    assert code == 2 and "unknown dataset 'cifar'" in err
