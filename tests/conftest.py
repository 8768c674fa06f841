"""Shared fixtures. Real research data is read from ../shared/data and never copied;
tests that need it skip with a clear message where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path under the shared data folder, or skip the test naming what is missing."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} is absent (licensed data is never shipped with mekit)")
    return p


@pytest.fixture
def casme2_root() -> Path:
    return shared_path("CASME2")


@pytest.fixture
def ckplus_root() -> Path:
    return shared_path("CK+48")


@pytest.fixture
def sheets_root() -> Path:
    return shared_path("coding_sheets")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test session gets its own mekit cache so tests never see a user's cache."""
    monkeypatch.setenv("MEKIT_CACHE", str(tmp_path_factory.getbasetemp() / "mekit-cache"))


def cli_error_line(args: list, monkeypatch, capsys) -> str:
    """Run ``mekit ARGS`` through the real entry point; it must exit 2 with one ``error:`` line
    and no traceback. Returns that line."""
    import sys

    from mekit.cli.main import main

    monkeypatch.setattr(sys, "argv", ["mekit", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error:") and "Traceback" not in err, err
    return err


def synthetic_flow_image_set(tmp_path_factory, corpora: dict[str, str | None] | None = None, **options):
    """A synthetic corpus (``load_dataset("synthetic", **options)``) written by mekit's writer as an
    HTNet-layout flow-image set, with a cache of its own; a generator for module-scoped fixtures
    (``yield from``), yielding ``(table, folder, export summary)``.

    ``corpora``: corpus name -> the last subject id it holds, in order (None: every subject left),
    stored in the table's ``corpus`` column, which the writer puts in the CSV's dataset column."""
    from mekit.data import load_dataset
    from mekit.data.schema import SampleTable
    from mekit.preprocess.export import export_flow_image_set

    mp = pytest.MonkeyPatch()
    mp.setenv("MEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    table = load_dataset("synthetic", **options)
    if corpora:
        df = table.df.copy()
        df["corpus"] = [next(c for c, last in corpora.items() if last is None or s <= last) for s in df["subject"]]
        table = SampleTable(df, table.report, table.name, table.scheme)
    out = tmp_path_factory.mktemp("flow_set")
    done = export_flow_image_set(table, out, layout="htnet", preprocess={"detector": "none", "landmarks": False,
                                                                         "workers": 1}, progress=False)
    yield table, out, done
    mp.undo()


def nested_config(base: dict, **over):
    """``load_config`` of a nested dict ``base`` with dotted overrides (``a.b=value``)."""
    import json

    from mekit.config import load_config

    raw = json.loads(json.dumps(base))
    for key, value in over.items():
        cur = raw
        parts = key.split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = value
    return load_config(None, raw)


#: the tiny synthetic corpus and per-frame intensity config the intensity tests share
TINY_INTENSITY_CORPUS = dict(n_subjects=4, clips_per_subject=3, size=64, frames=(20, 28))
TINY_INTENSITY = {
    "name": "tiny_intensity", "task": "intensity",
    "data": {"loader": "synthetic", "options": TINY_INTENSITY_CORPUS},
    "preprocess": {"detector": "none", "landmarks": False, "workers": 1},
    "model": {"name": "ridge"},
    "intensity": {"source": "synthetic", "frame_size": 48, "grid": 4, "bins": 8, "plot_clips": 2},
    "protocol": {"name": "loso"},
}
