"""The label scheme is a field of the sample table: set where a scheme is applied, kept by
``subset`` (and by ``concat`` when every part has the same scheme)."""

from __future__ import annotations

import pandas as pd

from mekit.data import load_dataset
from mekit.data.labels import apply_scheme, get_scheme
from mekit.data.schema import SampleTable

from _layouts import make_image_folder


def _table(emotions: list[str], dataset: str = "casme2", start: int = 0) -> SampleTable:
    return SampleTable(pd.DataFrame({
        "sample_id": [f"{dataset}/s{start + i}" for i in range(len(emotions))], "dataset": dataset,
        "subject": [f"{dataset}/{i % 2}" for i in range(len(emotions))], "clip": "c", "media": "image",
        "path": "x.png", "emotion": emotions}))


def test_scheme_defaults_to_none():
    t = _table(["happiness"])
    assert t.scheme is None and getattr(t, "scheme", None) is None
    assert apply_scheme(t, None).scheme is None


def test_loaded_scheme_survives_subset(tmp_path):
    root = make_image_folder(tmp_path / "ck", {"happy": 3, "sadness": 3, "anger": 2}, subjects=2)
    t = load_dataset("image_folder", root, label_scheme="basic7", subject_pattern=r"^(S\d+)_")
    assert t.scheme == get_scheme("basic7")
    half = t.subset(t.df["label"] == "happy")
    assert len(half) == 3 and half.scheme is t.scheme
    picked = t.subset(t.sample_ids[:2])
    assert picked.scheme is t.scheme and getattr(picked, "scheme", None).name == "basic7"


def test_concat_keeps_a_shared_scheme_only():
    a = apply_scheme(_table(["happiness", "disgust"]), "casme2_4class")
    b = apply_scheme(_table(["surprise"], start=10), "casme2_4class")
    assert a.concat(b).scheme == get_scheme("casme2_4class")
    other = apply_scheme(_table(["surprise"], start=20), "megc_3class")
    assert a.concat(other).scheme is None
    assert a.concat(apply_scheme(_table(["fear"], start=30), None)).scheme is None


def test_attribute_assignment_still_works():
    # loaders that set the scheme after building a table (megc, data check) keep working
    t = _table(["happiness"])
    t.scheme = get_scheme("basic7")
    assert t.subset(t.sample_ids).scheme.name == "basic7"
