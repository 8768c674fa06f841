"""Optional MLflow logging of a finished run (``output.mlflow: true``).

mlflow 3 refuses the plain file store ("maintenance mode"), so the default is a sqlite
store next to the runs: ``sqlite:///<runs parent>/mlflow.db``, with artifacts in
``<runs parent>/mlartifacts`` (never mlflow's default ``./mlruns`` under whatever folder the
process happened to start in).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: metrics logged for every run (floats in metrics.json)
LOGGED_METRICS = ("accuracy", "uf1", "uar", "weighted_f1")


def default_uri(out: Path) -> str:
    """The sqlite store used when ``output.mlflow_uri`` is not set: next to the run folder."""
    return f"sqlite:///{(Path(out).parent / 'mlflow.db').resolve()}"


def log_mlflow(result, out: Path) -> str:
    """Log a finished run's parameters, metrics and report files; returns the MLflow run id.

    The MLflow experiment is named after the data loader; each run after ``cfg.name``.
    """
    import mlflow

    out = Path(out)
    cfg, m = result.config, result.metrics
    uri = cfg.output.mlflow_uri or default_uri(out)
    mlflow.set_tracking_uri(uri)
    name = cfg.data.loader
    if mlflow.get_experiment_by_name(name) is None:
        art = None
        if uri.startswith("sqlite:///"):
            art = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
        mlflow.create_experiment(name, artifact_location=art)
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name=cfg.name) as run:
        mlflow.log_params({"features": cfg.features.name, "model": cfg.model.name, "protocol": m["protocol"],
                           "leaky": m["leaky"], "class_weight": cfg.imbalance.class_weight,
                           "sampler": cfg.imbalance.sampler, "label_scheme": cfg.data.label_scheme, "seed": cfg.seed})
        mlflow.log_metrics({k: float(m[k]) for k in LOGGED_METRICS})
        for k, v in m.get("over_seeds", {}).items():
            mlflow.log_metrics({f"{k}_seed_mean": float(v["mean"]), f"{k}_seed_std": float(v["std"])})
        mlflow.set_tag("mekit.run_dir", str(out.resolve()))
        # the report files only: per-fold checkpoints under folds/ can be large and are for resuming
        for f in sorted(out.iterdir()):
            if f.is_file():
                mlflow.log_artifact(str(f))
        log.info("logged to MLflow %s (run %s)", uri, run.info.run_id)
        return run.info.run_id
