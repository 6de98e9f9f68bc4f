"""Trainer callbacks (ganvae.callbacks): the hooks on real tiny runs, the CSV logger against
metrics.jsonl through resume and NaN rollback, and the MLflow example read back from its store."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import ganvae
from ganvae.callbacks import Callback, CSVLogger

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = "shapes:n=64,n_test=16"
ROOT = Path(__file__).resolve().parents[1]


def _train(run, steps=4, callbacks=None, resume=False, **options):
    """A tiny VAE (width 8) trained to `steps`, logging every step, checkpointing every 2."""
    if resume:
        return ganvae.train("", run_dir=run, resume=True, steps=steps, progress=False, callbacks=callbacks, **options)
    return ganvae.train("vae", DATA, run, steps=steps, batch_size=16, log_every=1, checkpoint_every=2,
                        overrides={"width": 8, "latent": 4}, progress=False, callbacks=callbacks, **options)


def _jsonl(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _assert_csv_matches_jsonl(run) -> list[dict]:
    """metrics.csv holds metrics.jsonl's rows: the same keys (as its header) and values."""
    lines = _jsonl(run)
    with open(run / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    assert header == list(dict.fromkeys(k for r in lines for k in r))
    assert len(rows) == len(lines)
    for got, want in zip(rows, lines):
        got = {k: v for k, v in got.items() if v != ""}   # (a cell of a key this row lacks is empty)
        assert got == {k: str(v) for k, v in want.items()}
        assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in want.items()}
    return lines


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_start(self, trainer):
        self.events.append(("start", trainer.step))

    def on_step(self, trainer):
        self.events.append(("step", trainer.step))

    def on_log(self, trainer, row):
        self.events.append(("log", dict(row)))

    def on_end(self, trainer, summary):
        self.events.append(("end", summary))


def test_hooks_see_every_step_row_and_the_summary(tmp_path):
    rec, plain = Recorder(), []
    run, summary = _train(tmp_path / "r", steps=4, callbacks=[rec, lambda t: plain.append(t.step)])
    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "start" and rec.events[0][1] == 0 and kinds[-1] == "end"
    assert [s for k, s in rec.events if k == "step"] == [1, 2, 3, 4]
    assert plain == [1, 2, 3, 4]   # a plain callable still runs after every step
    assert [r for k, r in rec.events if k == "log"] == _jsonl(run)
    # each row is seen as it is written, before that step's on_step
    assert kinds[1:-1] == ["log", "step"] * 4
    assert rec.events[-1][1] == summary == json.loads((run / "summary.json").read_text())


def test_refuses_what_is_not_a_callback(tmp_path):
    from ganvae.errors import BadInput

    with pytest.raises(BadInput, match="neither a ganvae.callbacks.Callback nor a callable"):
        _train(tmp_path / "r", steps=1, callbacks=[42])


def test_csv_matches_jsonl_across_a_resume_that_drops_rows(tmp_path):
    run = tmp_path / "r"
    _train(run, steps=4)
    assert [r["step"] for r in _assert_csv_matches_jsonl(run)] == [1, 2, 3, 4]
    # as if killed after step 4 was logged but before its checkpoint: the resume goes back to 2
    for p in (run / "checkpoints").glob("step_00000004.*"):
        p.unlink()
    _train(run, steps=8, resume=True)
    assert [r["step"] for r in _assert_csv_matches_jsonl(run)] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_csv_matches_jsonl_after_a_nan_rollback(tmp_path):
    class Poison(Callback):
        """After step 5, non-finite weights once: step 6 diverges and rolls back to step 4."""

        done = False

        def on_step(self, trainer):
            if trainer.step == 5 and not self.done:
                self.done = True
                with torch.no_grad():
                    next(trainer.model.parameters()).fill_(float("nan"))

    run = tmp_path / "r"
    rec = Recorder()
    with pytest.warns(UserWarning, match="rolled back to step 4"):
        _train(run, steps=7, callbacks=[Poison(), rec], on_nan="rollback")
    assert ("start", 4) in rec.events   # told that training restarts at the checkpoint
    assert [r["step"] for r in _assert_csv_matches_jsonl(run)] == [1, 2, 3, 4, 5, 6, 7]


def test_a_new_column_rewrites_the_header(tmp_path):
    """A key first seen in a later row: the file again, with the union header, cells left empty."""
    trainer = SimpleNamespace(run_dir=tmp_path)
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss/d": 0.5}) + "\n")
    log = CSVLogger()
    log.on_start(trainer)
    for row in ({"step": 2, "loss/d": 0.25, "reg/r1": 3.0}, {"step": 3, "loss/d": 0.125}):
        with open(tmp_path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        log.on_log(trainer, row)
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [
        "step,loss/d,reg/r1", "1,0.5,", "2,0.25,3.0", "3,0.125,"]
    _assert_csv_matches_jsonl(tmp_path)


def test_csv_log_false_writes_no_csv(tmp_path):
    run, _ = _train(tmp_path / "r", steps=2, csv_log=False)
    assert (run / "metrics.jsonl").exists() and not (run / "metrics.csv").exists()
    assert json.loads((run / "config.json").read_text())["train"]["csv_log"] is False


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_mlflow_example_logs_to_a_local_store(tmp_path):
    pytest.importorskip("mlflow", reason="the MLflow example needs the optional extra: pip install 'ganvae[mlflow]'")
    pytest.importorskip("sqlalchemy", reason="MLflow's SQLite store needs SQLAlchemy (the mlflow extra)")
    pytest.importorskip("alembic", reason="MLflow's SQLite store needs Alembic (the mlflow extra)")
    from mlflow.tracking import MlflowClient

    spec = importlib.util.spec_from_file_location("mlflow_callback", ROOT / "examples" / "mlflow_callback.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    logger = example.MLflowLogger(tmp_path / "mlruns")
    run, summary = _train(tmp_path / "r", steps=4, callbacks=[logger])

    client = MlflowClient(logger.tracking_uri)
    got = client.get_run(logger.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["model.width"] == "8" and got.data.params["train.steps"] == "4"
    assert got.data.params["data.spec"] == DATA
    history = client.get_metric_history(logger.run_id, "loss/recon")
    lines = _jsonl(run)
    assert sorted(m.step for m in history) == [r["step"] for r in lines] == [1, 2, 3, 4]
    assert {m.step: m.value for m in history} == pytest.approx({r["step"]: r["loss/recon"] for r in lines})
    assert got.data.metrics["summary/steps"] == 4 and got.data.tags["summary/dtype"] == summary["dtype"]
    assert [a.path for a in client.list_artifacts(logger.run_id, "samples")] == ["samples/final.png",
                                                                                  "samples/final_recon.png"]
    local = Path(client.download_artifacts(logger.run_id, "samples/final.png", str(tmp_path / "dl")))
    assert local.read_bytes() == (run / "samples" / "final.png").read_bytes()
