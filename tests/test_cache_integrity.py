"""Cached evaluators and real-data statistics carry a checksum (issue 16, faults at scale): a
damaged entry is detected, discarded with a warning and rebuilt, never used."""

import numpy as np

from ganvae.data import load_dataset
from tests.conftest import DATA

# the tests' shared tiny data: its evaluator is usually in the session's cache already, so only
# the retraining after the damage costs time (retraining is deterministic: the same weights)
SMALL = DATA


def _flip_a_byte_near_the_end(path):
    """Damage a file the way a bad disk does: the format stays valid, one value changes."""
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x40
    path.write_bytes(bytes(raw))


def test_a_damaged_cached_evaluator_is_retrained_not_used(isolated_cache):
    from ganvae.evaluators import cache_root, file_sha256, get_evaluator

    ds = load_dataset(SMALL)
    logs = []
    first = get_evaluator(ds, log=logs.append)
    entry = cache_root() / "evaluators" / first.id
    assert first.meta["file_sha256"] == file_sha256(entry / "model.safetensors")
    _flip_a_byte_near_the_end(entry / "model.safetensors")
    logs.clear()
    again = get_evaluator(ds, log=logs.append)
    assert any("damaged evaluator" in m and "checksum" in m for m in logs), logs
    assert any(m.startswith("training the evaluator") for m in logs)
    assert again.meta["file_sha256"] == file_sha256(entry / "model.safetensors")   # rebuilt and whole again


def test_a_damaged_statistics_cache_is_recomputed_not_used(isolated_cache):
    from ganvae.evaluation import real_features
    from ganvae.evaluators import cache_root, get_evaluator

    ds = load_dataset(SMALL)
    ev = get_evaluator(ds, log=lambda m: None)
    x = ds.test.x
    feats, probs = real_features(ev, x, "test", log=lambda m: None)
    (path,) = [p for p in (cache_root() / "stats").glob("*.npz")
               if np.load(p)["feats"].shape == feats.shape and np.allclose(np.load(p)["feats"], feats)]
    with np.load(path) as z:   # a changed value under the old checksum: a valid .npz that lies
        arrays = {k: z[k] for k in z.files}
    arrays["feats"] = arrays["feats"] + 1.0
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    logs = []
    again, _ = real_features(ev, x, "test", log=logs.append)
    assert any("damaged statistics cache" in m for m in logs), logs
    np.testing.assert_array_equal(again, feats)
    logs.clear()
    real_features(ev, x, "test", log=logs.append)   # rewritten whole: read back without a warning
    assert logs == []
