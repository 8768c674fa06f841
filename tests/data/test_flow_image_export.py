"""Flow-image sets written by mekit (``export_flow_image_set``) read back by the ``flow_images``
loader, and every feature extractor, input builder and model on such a set: it works, or it is
refused in one line before any fold runs."""

from __future__ import annotations

import numpy as np
import pytest

from mekit.data import load_dataset
from mekit.data.flow_images import FLOW_IMAGE_INPUTS, check_flow_image_input, load_flow_images
from mekit.errors import ConfigError, DataError
from mekit.preprocess.export import export_flow_image_set
from tests.conftest import nested_config, synthetic_flow_image_set

PRE = {"detector": "none", "landmarks": False, "workers": 1}
CORPUS = dict(n_subjects=3, clips_per_subject=2, size=64, frames=(12, 14))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A tiny synthetic corpus and the HTNet-layout set mekit writes from it."""
    yield from synthetic_flow_image_set(tmp_path_factory, **CORPUS)


def test_htnet_export_reads_back(written):
    import cv2

    from mekit.preprocess.io import read_flow_image
    from mekit.preprocess.pipeline import preprocess

    table, out, done = written
    assert done["written"] == len(table) and done["skipped"] == {}
    csv = out / "combined_3_class2_for_optical_flow.csv"
    assert csv.read_text().splitlines()[0] == "dataset,sub,filename_o,label,apex,imagename,sub_filename"
    img_dir = out / "datasets" / "STSNet_whole_norm_u_v_os"
    assert (img_dir / "sub01_clip01 .png").is_file()  # HTNet's space before the extension
    back = load_flow_images(out, file_rule="{sub}_{filename_o} .png")
    assert back.report.problems == [] and back.report.missing == []
    want = {f"flow_images/synthetic/{sid.split('/', 1)[1]}": sid for sid in table.sample_ids}
    assert sorted(back.sample_ids) == sorted(want)
    src = table.df.set_index("sample_id")
    for sid, row in back.df.set_index("sample_id").iterrows():
        orig = src.loc[want[sid]]
        assert row["label"] == orig["label"]
        assert row["subject"] == f"flow_images/{orig['subject']}"
        assert cv2.imread(row["path"]).shape == (28, 28, 3)
    # u, v and strain round trip within the 8-bit quantisation of the published form
    res = preprocess(table, {**PRE, "pairs": ["onset_apex"], "stack_sizes": [28]}, progress=False)
    for sid, orig_sid in want.items():
        got = read_flow_image(back.row(sid)["path"])
        assert np.abs(got - res[orig_sid]["flow_28"]).max() <= 0.5 / 255 + 1e-6


def test_ststnet_export_reads_back(written, tmp_path):
    table, _, _ = written
    done = export_flow_image_set(table, tmp_path, layout="ststnet", preprocess=PRE, progress=False)
    back = load_flow_images(tmp_path)
    assert len(back) == done["written"] == len(table)
    assert sorted(back.subjects) == ["flow_images/sub01", "flow_images/sub02", "flow_images/sub03"]
    # the STSTNet layout names an image <subject>_<clip>, and the loader takes its stem as the clip
    labels = {"_".join(sid.split("/")[1:]): lab for sid, lab in zip(table.sample_ids, table.df["label"])}
    for sid, lab in zip(back.sample_ids, back.df["label"]):
        assert lab == labels[sid.rsplit("/", 1)[1]]
    # every other subject's samples sit in u_train, never the subject's own
    assert not list((tmp_path / "sub01" / "u_train").rglob("sub01_*.png"))
    assert len(list((tmp_path / "sub01" / "u_train").rglob("*.png"))) == 4


def test_export_refuses_bad_layout_and_stills(written, tmp_path):
    table, _, _ = written
    with pytest.raises(ConfigError, match="layout 'nope'"):
        export_flow_image_set(table, tmp_path, layout="nope", preprocess=PRE)
    flows = load_flow_images(written[1])
    with pytest.raises(DataError, match="none of the 6 samples is a clip"):
        export_flow_image_set(flows, tmp_path, preprocess=PRE)


def _every_input():
    from mekit.features import FEATURES, INPUTS

    return [("features", n) for n in FEATURES.names()] + [("inputs", n) for n in INPUTS.names()]


def test_every_extractor_and_input_is_decided():
    names = {n for _, n in _every_input()}
    assert names == set(FLOW_IMAGE_INPUTS), "add each new extractor/input to FLOW_IMAGE_INPUTS"


def _one_line(e: Exception) -> str:
    msg = str(e)
    assert "\n" not in msg and "flow" in msg, msg
    return msg


_CONCAT = {"parts": [{"name": "hoof"}, {"name": "flow_descriptors", "params": {"sqrt": True}}]}


@pytest.mark.parametrize("kind,name", _every_input())
def test_every_input_on_a_flow_image_set(written, kind, name):
    """Works (one row per image) or a one-line ConfigError/DataError; never a KeyError."""
    from mekit.engine.factory import build_inputs

    flows = load_flow_images(written[1])
    params = _CONCAT if name == "concat" else {}
    if kind == "features":
        raw = {"data": {"loader": "flow_images", "root": str(written[1])}, "preprocess": PRE,
               "features": {"name": name, "params": params}, "model": {"name": "logreg"}}
    else:
        from mekit.models import MODELS

        model = next((m for m in MODELS.names() if MODELS.meta(m)["input"] == name), "resnet18_flow")
        raw = {"data": {"loader": "flow_images", "root": str(written[1])}, "preprocess": PRE,
               "features": {"name": name if name == "hsv_flow" else "hoof"}, "model": {"name": model}}
    cfg = nested_config(raw)
    ok = FLOW_IMAGE_INPUTS[name][0]
    if not ok:
        from mekit.evaluation.validate import validate_config

        with pytest.raises(ConfigError) as e:
            validate_config(cfg)  # at load time, before any work
        assert "loader flow_images" in _one_line(e.value)
        with pytest.raises(ConfigError) as e:
            build_inputs(flows, cfg)  # and on the rows, for a table passed in directly
        _one_line(e.value)
        return
    feats = build_inputs(flows, cfg, progress=False)
    assert sorted(feats.sample_ids) == sorted(flows.sample_ids) and feats.skipped == {}
    assert np.isfinite(feats.X).all() and len(feats.X) == len(flows)


@pytest.mark.parametrize("name,params", [("hoof", {"apex_offset": True}),
                                         ("flow_descriptors", {"pairs": ["onset_apex", "apex_offset"]}),
                                         ("concat", {"parts": [{"name": "hoof"}, {"name": "lbp_top"}]})])
def test_refused_parameters(name, params):
    with pytest.raises(ConfigError) as e:
        check_flow_image_input(name, params)
    assert "loader flow_images" in _one_line(e.value)


def test_flow_image_item_names_what_is_missing(written):
    from mekit.preprocess.pipeline import preprocess

    flows = load_flow_images(written[1])
    res = preprocess(flows, PRE, progress=False)
    item = res[flows.sample_ids[0]]
    assert item["uv_onset_apex"].shape == (28, 28, 2) and item["strain_onset_apex"].shape == (28, 28)
    assert np.allclose(np.median(item["uv_onset_apex"].reshape(-1, 2), axis=0), 0, atol=1e-6)
    with pytest.raises(DataError, match="precomputed flow image .* no 'apex'"):
        item["apex"]


@pytest.mark.slow
def test_flow_descriptors_loso_on_flow_images(tmp_path):
    """The issue's case: flow_descriptors on the flow-image loader ran into KeyError 'uv_onset_apex'."""
    from mekit.experiment import run_experiment

    table = load_dataset("synthetic", n_subjects=4, clips_per_subject=8, size=64, frames=(12, 14))
    export_flow_image_set(table, tmp_path / "set", preprocess=PRE, progress=False)
    cfg = nested_config({"name": "fi", "data": {"loader": "flow_images", "root": str(tmp_path / "set")},
                         "preprocess": PRE, "features": {"name": "flow_descriptors", "params": {"mdmo": True}},
                         "model": {"name": "logreg"}, "protocol": {"name": "loso"}})
    res = run_experiment(cfg)
    assert len(res.predictions) == len(table) - len(res.excluded)


@pytest.mark.realdata
@pytest.mark.slow
def test_casme2_export_reads_back(casme2_root, tmp_path, monkeypatch):
    """A handful of real CASME II clips written as an HTNet-layout set in pytest's tmp folder."""
    monkeypatch.setenv("MEKIT_CACHE", str(tmp_path / "cache"))
    table = load_dataset("casme2", casme2_root, label_scheme="megc_3class")
    some = table.subset([s for s in table.sample_ids if s.startswith(("casme2/sub01/", "casme2/sub02/"))][:4])
    out = tmp_path / "set"
    done = export_flow_image_set(some, out, layout="htnet", preprocess={"detector": "none", "workers": 1},
                                 progress=False)
    assert done["written"] == len(some)
    assert sorted((out / "datasets" / "STSNet_whole_norm_u_v_os").iterdir())[0].name.endswith(" .png")
    back = load_flow_images(out)
    assert sorted(back.sample_ids) == sorted(f"flow_images/{s}" for s in some.sample_ids)
    assert sorted(back.df["label"]) == sorted(some.df["label"])
    assert set(back.df["corpus"]) == {"casme2"}
    assert any("0=negative" in n for n in back.report.notes)
