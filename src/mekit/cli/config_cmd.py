"""`mekit config show`: the fully resolved experiment config (defaults filled in), as YAML."""

from __future__ import annotations

from pathlib import Path

import typer

from mekit.cli.main import app

config_app = typer.Typer(no_args_is_help=True, help="Inspect experiment configs.")
app.add_typer(config_app, name="config")


@config_app.command("show")
def show(config: Path = typer.Argument(..., help="experiment YAML"),
         overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. protocol.name=group_kfold")
         ) -> None:
    """Print CONFIG with the overrides applied and every default filled in, after the same checks a run
    makes: what `mekit run` would actually use."""
    import yaml

    from mekit.cli.common import load_experiment
    from mekit.evaluation.validate import resolved_config

    typer.echo(yaml.safe_dump(resolved_config(load_experiment(config, overrides)), sort_keys=False), nl=False)
