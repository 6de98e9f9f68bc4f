"""Log a ganvae run to MLflow, on this machine only: no tracking server.

    pip install "ganvae[mlflow]"          # mlflow-skinny, with SQLAlchemy and Alembic
    python examples/mlflow_callback.py    # trains a small VAE, logging into ./mlruns
    pip install mlflow                    # the UI is in the full package, not in skinny
    mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db

The store is a directory: the runs' records in an SQLite file (mlruns/mlflow.db), their
artifacts beside it (mlruns/artifacts/). MLflow 3 keeps its older plain-directory store
(--backend-store-uri ./mlruns) in maintenance mode and refuses to open it unless
MLFLOW_ALLOW_FILE_STORE=true; SQLite is the local store it recommends, and needs no server.

Each training session is one MLflow run: a resumed ganvae run opens a new one, its metrics
starting from the checkpoint's step (MLflow's params are write-once, and a resume may change
train.steps). The runs of one run directory share the tag ganvae.run_dir.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from ganvae.callbacks import Callback


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{"train": {"steps": 20}} -> {"train.steps": 20}: nested config as MLflow's flat keys."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def metric_key(name: str) -> str:
    """A metrics.jsonl column as an MLflow metric key: MLflow accepts letters, digits and
    _ - . / space (and : outside Windows), so `loss/g` stays as it is; anything else becomes _."""
    return re.sub(r"[^\w\-. /]", "_", name)


class MLflowLogger(Callback):
    """Send a run's config, its metric rows, summary and final samples to an MLflow store.

    Args:
        store: the store's directory (created if missing).
        experiment: the MLflow experiment the runs go into (created if missing).
        run_name: the MLflow run's name; default the run directory's name.
    """

    def __init__(self, store: str | Path = "mlruns", experiment: str = "ganvae", run_name: str | None = None):
        self.store = Path(store).resolve()
        self.experiment, self.run_name = experiment, run_name
        self.client = None
        self.run_id: str | None = None

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{(self.store / 'mlflow.db').as_posix()}"

    def on_start(self, trainer) -> None:
        if self.run_id is not None:   # a NaN rollback restarts training, not the MLflow run
            return
        from mlflow.entities import Param, RunTag
        from mlflow.tracking import MlflowClient

        self.store.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(self.tracking_uri)
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(
            self.experiment, artifact_location=(self.store / "artifacts").as_uri())
        run_dir = Path(trainer.run_dir)
        run = self.client.create_run(experiment_id, run_name=self.run_name or run_dir.name,
                                     tags={"ganvae.run_dir": str(run_dir.resolve()), "ganvae.preset": trainer.cfg.preset})
        self.run_id = run.info.run_id
        # config.json as train() wrote it: what rebuilds the run, as model.width, train.steps, ...
        config = json.loads((run_dir / "config.json").read_text())
        params = [Param(k, json.dumps(v) if isinstance(v, (list, dict)) else str(v)) for k, v in flatten(config).items()]
        # (MLflow takes at most 100 params per call)
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        self.client.log_batch(self.run_id, tags=[RunTag("ganvae.start_step", str(trainer.step))])

    def on_log(self, trainer, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(metric_key(k), float(v), now, row["step"]) for k, v in row.items()
                   if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)]
        self.client.log_batch(self.run_id, metrics=metrics)

    def on_end(self, trainer, summary: dict[str, Any]) -> None:
        from mlflow.entities import Metric, RunTag

        now, step = int(time.time() * 1000), summary["steps"]
        flat = flatten(summary)   # updates: {"g": 20} -> summary/updates.g
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(metric_key(f"summary/{k}"), float(v), now, step) for k, v in flat.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)],
            tags=[RunTag(f"summary/{k}", str(v)) for k, v in flat.items() if isinstance(v, str)])
        self.client.log_dict(self.run_id, summary, "summary.json")
        # the final sample grid, and an encoder model's reconstructions beside it
        for png in sorted((Path(trainer.run_dir) / "samples").glob("final*.png")):
            self.client.log_artifact(self.run_id, str(png), "samples")
        self.client.set_terminated(self.run_id, "FINISHED")


if __name__ == "__main__":
    import ganvae

    run_dir, summary = ganvae.train("vae", "shapes", steps=20, log_every=5, callbacks=[MLflowLogger("mlruns")])
    print(f"{run_dir}: {summary['steps']} steps, logged to ./mlruns; view with\n"
          "  mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db")
