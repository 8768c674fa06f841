"""Optional MLflow logging of a finished run (``output.mlflow: true``).

mlflow 3 refuses the plain file store ("maintenance mode"), so the default is a sqlite
store next to the runs: ``sqlite:///<runs parent>/mlflow.db``.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def log_mlflow(result, out: Path) -> str:
    import mlflow

    cfg, m = result.config, result.metrics
    uri = cfg.output.mlflow_uri or f"sqlite:///{(out.parent / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(cfg.data.loader)
    with mlflow.start_run(run_name=cfg.name) as run:
        mlflow.log_params({"features": cfg.features.name, "model": cfg.model.name, "protocol": m["protocol"],
                           "leaky": m["leaky"], "class_weight": cfg.imbalance.class_weight,
                           "sampler": cfg.imbalance.sampler, "label_scheme": cfg.data.label_scheme, "seed": cfg.seed})
        mlflow.log_metrics({k: float(m[k]) for k in ("accuracy", "uf1", "uar", "weighted_f1")})
        mlflow.log_artifacts(str(out))
        log.info("logged to MLflow %s (run %s)", uri, run.info.run_id)
        return run.info.run_id
