"""The MEGC 2019 composite (SMIC + CASME II + SAMM, negative/positive/surprise)."""

from __future__ import annotations

import pytest
from _layouts import Clip, make_casme2, make_samm, make_smic
from conftest import shared_path

from mekit.data import load_dataset
from mekit.data.megc import load_megc2019
from mekit.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def megc_sheets():
    """The composite built from the real coding sheets alone (no frames needed)."""
    return load_megc2019(casme2_root=shared_path("CASME2"), samm_root=shared_path("coding_sheets", "SAMM"),
                         smic_root=shared_path("coding_sheets", "SMIC"), check_frames=False)


@pytest.mark.realdata
def test_megc_real_sheets_counts(megc_sheets):
    t = megc_sheets
    df = t.df
    # The official composite: 442 clips (CASME II 145, SAMM 133, SMIC 164), 68 subjects. The CASME II
    # sheet admits two more negatives than the organisers' list (see mekit.data.megc): 147.
    assert len(t) == 444
    assert df.groupby("dataset").size().to_dict() == {"casme2": 147, "samm": 133, "smic": 164}
    assert df["subject"].nunique() == 68
    assert df.groupby("dataset")["subject"].nunique().to_dict() == {"casme2": 24, "samm": 28, "smic": 16}
    per = {(d, lab): int(n) for (d, lab), n in df.groupby(["dataset", "label"]).size().items()}
    assert per == {("casme2", "negative"): 90, ("casme2", "positive"): 32, ("casme2", "surprise"): 25,
                   ("samm", "negative"): 92, ("samm", "positive"): 26, ("samm", "surprise"): 15,
                   ("smic", "negative"): 70, ("smic", "positive"): 51, ("smic", "surprise"): 43}
    assert t.report.dropped == {"others": 99, "sadness": 7, "fear": 2, "Other": 26}
    assert t.scheme.name == "megc_3class"
    assert set(t.classes) == {"negative", "positive", "surprise"}


@pytest.mark.realdata
def test_megc_real_mapping_per_corpus(megc_sheets):
    df = megc_sheets.df
    pairs = set(zip(df["dataset"], df["emotion"], df["label"]))
    assert ("casme2", "repression", "negative") in pairs and ("casme2", "happiness", "positive") in pairs
    assert ("samm", "Contempt", "negative") in pairs and ("samm", "Sadness", "negative") in pairs
    assert ("smic", "surprise", "surprise") in pairs
    assert not any(d == "casme2" and e in {"sadness", "fear"} for d, e, _ in pairs)


@pytest.mark.realdata
def test_megc_exclude_reaches_a_given_list(megc_sheets):
    # The exclude option (e.g. to match a paper's list); the report records it.
    drop = ["casme2/sub01/EP19_05f", "casme2/sub01/EP19_06f"]
    t = load_megc2019(casme2_root=shared_path("CASME2"), samm_root=shared_path("coding_sheets", "SAMM"),
                      smic_root=shared_path("coding_sheets", "SMIC"), check_frames=False, exclude=drop)
    assert len(t) == len(megc_sheets) - 2 and not set(drop) & set(t.sample_ids)
    assert any("excluded on request: 2" in n for n in t.report.notes)
    with pytest.raises(ConfigError, match="not in the composite"):
        load_megc2019(casme2_root=shared_path("CASME2"), samm_root=shared_path("coding_sheets", "SAMM"),
                      smic_root=shared_path("coding_sheets", "SMIC"), check_frames=False,
                      exclude=["casme2/sub99/none"])


@pytest.fixture
def fake_megc(tmp_path):
    root = tmp_path / "megc"
    make_casme2(root / "CASME2", [Clip(1, "EP02_01f", 46, 59, 60, "happiness"),
                                  Clip(1, "EP03_02", 1, 3, 5, "repression"),
                                  Clip(2, "EP07_01", 1, 3, 5, "sadness"),  # dropped by the scheme
                                  Clip(2, "EP08_01", 1, 3, 5, "disgust", folder=False)])  # missing
    make_samm(root / "SAMM", [Clip(6, "006_1_2", 10, 12, 15, "Contempt"), Clip(7, "007_1_1", 1, 2, 4, "Other")],
              preamble=10)
    make_smic(root / "SMIC", [Clip(1, "s1_sur_01", 100, 103, 106, 2)])
    return root


def test_megc_fake_root_with_three_corpora(fake_megc):
    t = load_megc2019(fake_megc)
    assert t.sample_ids == ["smic/s01/s1_sur_01", "casme2/sub01/EP02_01f", "casme2/sub01/EP03_02",
                            "samm/006/006_1_2"]
    assert t.df["label"].tolist() == ["surprise", "positive", "negative", "negative"]
    assert t.df["dataset"].tolist() == ["smic", "casme2", "casme2", "samm"]
    assert t.report.missing == ["casme2/sub02/EP08_01"]
    assert t.report.dropped == {"sadness": 1, "Other": 1}
    assert t.df["fps"].tolist() == [100.0, 200.0, 200.0, 200.0]
    assert t.frame_path("samm/006/006_1_2", 12).is_file()


def test_megc_registry_and_per_corpus_options(fake_megc, tmp_path):
    t = load_dataset("megc2019", fake_megc, samm={"frames_dir": fake_megc / "SAMM" / "SAMM"})
    assert len(t) == 4
    with pytest.raises(ConfigError, match="unknown option"):
        load_megc2019(fake_megc, casme3={})
    with pytest.raises(ConfigError, match="mapping"):
        load_megc2019(fake_megc, samm="x")
    with pytest.raises(DataError, match="no smic folder"):
        load_megc2019(tmp_path / "empty_root_that_is_missing")
    with pytest.raises(DataError, match="smic_root"):
        load_megc2019()
