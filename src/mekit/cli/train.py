"""`mekit train`: fit a config's model on its whole dataset into one bundle file."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app


@app.command()
def train(overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. model.name=ststnet"),
          config: Path = typer.Option(..., "--config", "-c", help="experiment YAML (see configs/)"),
          out: Path = typer.Option(None, "--out", "-o", help="bundle file to write (default <name>.mekit; an "
                                                             "existing folder gets <name>.mekit inside it)"),
          device: str = typer.Option(None, "--device", help="where a neural model trains: auto, cpu, cuda, cuda:N "
                                                            "or mps (sets compute.device)")) -> None:
    """Train on every subject of the config's dataset and write a .mekit bundle for `mekit predict`.

    Model selection is the model's own (inner subject-grouped CV or early stopping on an inner
    validation split of subjects); a config with `search` first chooses its recipe by an inner
    subject-grouped CV over every subject. `mekit evaluate` is how to estimate its accuracy on new
    subjects (for a search, the nested run of the same config).
    """
    from rich.console import Console

    from mekit.cli.common import load_experiment
    from mekit.engine.predict import train_bundle

    # --device is the override compute.device=..., so the config file's value is replaced the same way
    cfg = load_experiment(config, [*(overrides or []), *([f"compute.device={device}"] if device else [])])
    from mekit.cli.render import show_progress

    with show_progress():
        path = train_bundle(cfg, out or Path(f"{cfg.name}.mekit"))
    what = (f"the best of {len(cfg.search)} search candidates by inner CV over every subject (its scores: "
            "training.recipe_selection in the bundle's meta.json)" if cfg.search else cfg.model.name)
    Console().print(f"[bold]{cfg.name}[/]: {what} trained on all of {cfg.data.loader}; bundle: {path}")
