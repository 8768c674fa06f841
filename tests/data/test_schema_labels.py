import pandas as pd
import pytest

from mekit.data import LOADERS
from mekit.data.labels import SCHEMES, apply_scheme, canonical, load_scheme_yaml
from mekit.data.schema import COLUMNS, SampleTable, au_intensity, parse_action_units
from mekit.errors import ConfigError, DataError


@pytest.mark.parametrize("text,expected", [
    ("4+L12A", ["4", "L12A"]),
    ("(R6 or R12)+R15", ["R6/R12", "R15"]),
    ("AU1, AU2", ["1", "2"]),
    ("15A+17", ["15A", "17"]),
    (12.0, ["12"]),
    ("/", []),
    (None, []),
    ("R14B+L14C", ["R14B", "L14C"]),
])
def test_parse_action_units(text, expected):
    assert parse_action_units(text) == expected


def test_au_intensity_takes_strongest_letter():
    assert au_intensity(["4", "L12A", "15C"]) == pytest.approx(0.6)
    assert au_intensity(["4"]) is None


@pytest.mark.parametrize("raw,canon", [("Happiness", "happy"), ("SURPRISED", "surprise"), ("angry", "anger"),
                                       ("sadness", "sad"), ("Disgusted", "disgust"), ("Mystery", "mystery")])
def test_canonical(raw, canon):
    assert canonical(raw) == canon


def _table(emotions, dataset="casme2"):
    rows = [{"sample_id": f"{dataset}/s{i}", "dataset": dataset, "subject": f"{dataset}/s{i % 3}", "clip": str(i),
             "media": "frames", "path": "/x", "frame_template": "img{frame}.jpg", "onset": 1, "apex": 3,
             "offset": 5, "emotion": e, "action_units": "4+L12A"} for i, e in enumerate(emotions)]
    return SampleTable(pd.DataFrame(rows))


def test_schema_columns_and_types():
    t = _table(["happiness", "others"])
    assert list(t.df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert str(t.df["onset"].dtype) == "Int64"
    assert t.df["action_units"].iloc[0] == ("4", "L12A")
    assert t.frame_path("casme2/s0", 7).name == "img7.jpg"


def test_schema_rejects_duplicates_and_unqualified_subjects():
    df = _table(["a", "b"]).df
    df.loc[1, "sample_id"] = df.loc[0, "sample_id"]
    with pytest.raises(DataError, match="duplicate"):
        SampleTable(df)
    df = _table(["a"]).df
    df.loc[0, "subject"] = "s0"
    with pytest.raises(DataError, match="qualified"):
        SampleTable(df)


def test_scheme_counts_dropped():
    t = _table(["happiness", "disgust", "sadness", "fear", "others", "repression", "surprise"])
    out = apply_scheme(t, "megc_3class")
    assert out.class_counts() == {"negative": 2, "positive": 1, "surprise": 1}
    assert out.report.dropped == {"sadness": 1, "fear": 1, "others": 1}
    five = apply_scheme(t, "casme2_5class")
    assert set(five.classes) == {"happiness", "disgust", "repression", "surprise", "others"}
    assert sum(five.report.dropped.values()) == 2


def test_megc_per_dataset_mapping_for_samm():
    t = _table(["sadness", "contempt", "happiness", "other"], dataset="samm")
    out = apply_scheme(t, "megc_3class")
    assert out.class_counts() == {"negative": 2, "positive": 1}


def test_user_scheme_from_yaml(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: mine\nclasses: [pos, neg]\nmapping: {happiness: pos, disgust: neg}\n")
    s = load_scheme_yaml(p)
    assert s.map("Happiness") == "pos" and s.map("fear") is None
    p.write_text("mapping: {happiness: pos}\nclasses: [neg]\n")
    with pytest.raises(ConfigError, match="not in classes"):
        load_scheme_yaml(p)


def test_registries():
    assert {"casme2_5class", "casme2_4class", "megc_3class", "basic7", "six_class"} <= set(SCHEMES.names())
    assert {"image_folder", "casme2", "samm", "smic", "casme3", "megc2019", "flow_images", "video",
            "synthetic"} <= set(LOADERS.names())
