"""Preprocessing runs once per clip for all the features that read it: extractors declare what
they need, the planner merges the needs into as few pipeline passes as possible, and the
extractors' own pipeline calls are answered from those passes."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mekit import events
from mekit.errors import ConfigError
from mekit.features import (FEATURES, INPUTS, Need, get_extractor, plan_preprocessing, preprocess_needs,
                            preprocessed_for)
from mekit.preprocess import pipeline
from mekit.preprocess.pipeline import PreprocessConfig, covers

SYNTH = {"n_subjects": 3, "clips_per_subject": 2, "size": 64}
BASE = {"detector": "none", "size": 48, "landmarks": False, "workers": 1}

#: flow of two pairs (a superset of what hoof reads alone) and sampled frames: one pass
FLOW_AND_FRAMES = [{"name": "hoof", "params": {"grid": 3}},
                   {"name": "flow_descriptors", "params": {"pairs": ["apex_offset"], "grids": [2]}},
                   {"name": "lbp_top", "params": {"n_frames": 6, "size": 32, "grid": 2}}]
#: two samplings cannot share a pass, nor can a part that overrides the crop size
CONFLICTING = [{"name": "lbp_top", "params": {"n_frames": 6, "size": 32, "grid": 2}},
               {"name": "lbp_top", "params": {"n_frames": 8, "size": 32, "grid": 2}},
               {"name": "hoof", "params": {"grid": 3}, "preprocess": {"size": 40}}]


@pytest.fixture(scope="module")
def table():
    from mekit.data import load_dataset

    return load_dataset("synthetic", None, None, **SYNTH)


@pytest.fixture
def clip_counts(monkeypatch):
    """How many times the pipeline processed each clip (the parent's per-clip seam)."""
    seen: Counter = Counter()
    monkeypatch.setattr(pipeline, "_on_clip_done", lambda meta: seen.update([meta["sample_id"]]))
    return seen


def _pre(tmp_path, name: str, **extra) -> dict:
    return {**BASE, "cache_dir": str(tmp_path / name), **extra}


def _alone(table, pre: dict, parts: list) -> list:
    """Each part computed by itself, outside any planned preprocessing."""
    return [get_extractor(p["name"])(table, {**pre, **p.get("preprocess", {})}, progress=False, **p.get("params", {}))
            for p in parts]


def _assert_concat_of(fs, alone) -> None:
    assert all(a.sample_ids == fs.sample_ids for a in alone)
    widths = np.cumsum([0] + [a.X.shape[1] for a in alone])
    assert fs.X.shape[1] == widths[-1]
    for a, lo, hi in zip(alone, widths[:-1], widths[1:]):
        assert np.array_equal(fs.X[:, lo:hi], a.X)


# ---------------------------------------------------------------------------------------
# declarations and the plan
# ---------------------------------------------------------------------------------------
def test_every_registered_extractor_declares_its_needs():
    assert not set(FEATURES.names()) & set(INPUTS.names())  # one name, one function
    for name in [*FEATURES.names(), *INPUTS.names()]:
        params = {"parts": [{"name": "hoof"}]} if name == "concat" else {}
        needs = preprocess_needs(name, params, {})
        assert needs and all(isinstance(n, Need) for n in needs), name
        for n in needs:
            PreprocessConfig.from_dict(dict(n.overrides))  # every override is a pipeline setting


def test_needs_follow_the_parameters_and_the_parts_own_overrides():
    assert preprocess_needs("hoof", {}) == [Need({"pairs": ["onset_apex"]})]
    assert preprocess_needs("hoof", {"apex_offset": True}) == [Need({"pairs": ["onset_apex", "apex_offset"]})]
    assert preprocess_needs("lbp_top", {"n_frames": 6}) == \
        [Need({"sampling": {"method": "uniform", "n": 6}, "frame_size": 64})]
    assert preprocess_needs("flow", {"size": 28}, {"stack_sizes": [224]}) == [Need({"stack_sizes": [28, 224]})]
    got = preprocess_needs("concat", {"parts": [{"name": "hog", "preprocess": {"margin": 0.3}},
                                                {"name": "hoof", "params": {"apex_offset": True}}]})
    assert got == [Need({"margin": 0.3, "pairs": [], "sampling": None, "magnify": None}, "stills"),
                   Need({"margin": 0.3, "pairs": ["onset_apex"]}, "clips"),
                   Need({"pairs": ["onset_apex", "apex_offset"]})]
    with pytest.raises(ConfigError, match="parts"):
        preprocess_needs("concat", {})


def test_an_extractor_registered_without_needs_runs_the_pipeline_itself(table, tmp_path, monkeypatch, clip_counts):
    monkeypatch.setitem(FEATURES._meta, "hoof", {k: v for k, v in FEATURES.meta("hoof").items() if k != "needs"})
    assert preprocess_needs("hoof", {}) == []
    pre = _pre(tmp_path, "plugin")
    hoof = {"name": "hoof", "params": {"grid": 3, "apex_offset": True}}
    params = {"parts": [hoof, {"name": "lbp_top", "params": {"n_frames": 6}}]}
    assert len(plan_preprocessing(table, pre, "concat", params)) == 1  # lbp_top's pass alone
    with preprocessed_for(table, pre, "concat", params):
        fs = get_extractor("concat")(table, pre, progress=False, **params)
    # lbp_top's pass computes onset->apex flow only: hoof's read of apex->offset runs a pass of its own
    assert clip_counts == Counter({s: 2 for s in table.sample_ids})
    alone = _alone(table, _pre(tmp_path, "alone"), [hoof])[0]
    assert np.array_equal(fs.X[:, :alone.X.shape[1]], alone.X)


def test_compatible_needs_merge_into_one_pass_and_conflicts_stay_apart(table):
    (run,) = plan_preprocessing(table, BASE, "concat", {"parts": FLOW_AND_FRAMES})
    d = run.config.to_dict()
    assert d["pairs"] == ["onset_apex", "apex_offset"]  # unioned
    assert (d["sampling"], d["frame_size"]) == ({"method": "uniform", "n": 6}, 32)  # joined with the flow
    assert run.sample_ids == tuple(table.sample_ids)

    runs = plan_preprocessing(table, BASE, "concat", {"parts": CONFLICTING})
    got = [((r.config.sampling or {}).get("n"), r.config.size, r.config.pairs) for r in runs]
    assert got == [(6, 48, ("onset_apex",)), (8, 48, ("onset_apex",)), (None, 40, ("onset_apex",))]


def test_a_mixed_table_gets_no_flow_for_its_stills():
    df = pd.DataFrame({"sample_id": ["a", "b", "c"], "media": ["frames", "image", "frames"]})
    fake = SimpleNamespace(df=df)
    runs = plan_preprocessing(fake, BASE, "concat", {"parts": [{"name": "hoof"}, {"name": "hog"}]})
    # hoof reads flow of every row (stills included, as it always did) and covers hog's reads
    assert [r.sample_ids for r in runs] == [("a", "b", "c")]
    # a hoof part with its own margin covers nothing of hog's: hog's stills and clips get passes of
    # their own, and its stills still get no flow
    runs = plan_preprocessing(fake, BASE, "concat", {"parts": [{"name": "hog"},
                                                              {"name": "hoof", "params": {"apex_offset": True},
                                                               "preprocess": {"margin": 0.1}}]})
    assert [(r.sample_ids, r.config.pairs, r.config.margin) for r in runs] == [
        (("a", "b", "c"), ("onset_apex", "apex_offset"), 0.1), (("a", "c"), ("onset_apex",), 0.2),
        (("b",), (), 0.2)]


def test_covers():
    base = PreprocessConfig.from_dict(BASE)
    frames = base.replace(pairs=["onset_apex", "apex_offset"], sampling={"method": "uniform", "n": 4}, frame_size=32)
    assert covers(frames, base) and covers(frames, base.replace(pairs=[], stack_sizes=[14, 56], workers=3))
    assert covers(frames, base.replace(pairs=["apex_offset"], sampling={"method": "uniform", "n": 4},
                                       frame_size=32, normalise="none"))
    assert not covers(base, frames)  # fewer pairs, no frames
    assert not covers(frames, base.replace(sampling={"method": "uniform", "n": 5}, frame_size=32))
    assert not covers(frames, base.replace(size=64))
    assert not covers(frames, base.replace(flow="farneback"))
    assert not covers(frames, base.replace(cache=False))


# ---------------------------------------------------------------------------------------
# one pass over the clips
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cache", [True, False])
def test_concat_of_flow_and_frames_processes_each_clip_once(table, tmp_path, clip_counts, cache):
    pre = _pre(tmp_path, "planned", cache=cache)
    params = {"parts": FLOW_AND_FRAMES}
    with preprocessed_for(table, pre, "concat", params) as results:
        assert len(results) == 1
        fs = get_extractor("concat")(table, pre, progress=False, **params)
    assert clip_counts == Counter(table.sample_ids)  # every clip once, for flow and frames together
    clip_counts.clear()
    _assert_concat_of(fs, _alone(table, _pre(tmp_path, "alone", cache=cache), FLOW_AND_FRAMES))
    assert clip_counts == Counter({s: 3 for s in table.sample_ids})  # alone: one pass per part


def test_conflicting_parts_run_apart_and_still_match(table, tmp_path, clip_counts):
    pre = _pre(tmp_path, "planned")
    params = {"parts": CONFLICTING}
    with preprocessed_for(table, pre, "concat", params) as results:
        assert len(results) == 3
        fs = get_extractor("concat")(table, pre, progress=False, **params)
    assert clip_counts == Counter({s: 3 for s in table.sample_ids})
    _assert_concat_of(fs, _alone(table, _pre(tmp_path, "alone"), CONFLICTING))


def test_each_clips_files_are_fingerprinted_once_per_run(table, tmp_path, monkeypatch):
    real = pipeline.sample_fingerprint
    seen: Counter = Counter()

    def counting(row):
        seen.update([row["sample_id"]])
        return real(row)

    monkeypatch.setattr(pipeline, "sample_fingerprint", counting)
    pre = _pre(tmp_path, "fp")
    params = {"parts": [*CONFLICTING, *FLOW_AND_FRAMES]}  # several passes, many reads
    for run in (1, 2):
        with preprocessed_for(table, pre, "concat", params):
            get_extractor("concat")(table, pre, progress=False, **params)
        # once per clip and run: the next run fingerprints again (it must see an edited frame)
        assert seen == Counter({s: run for s in table.sample_ids})
        assert pipeline._FINGERPRINTS.get() is None


def test_outside_a_plan_every_call_runs_the_pipeline(table, tmp_path, clip_counts):
    pre = _pre(tmp_path, "direct", cache=False)
    get_extractor("hoof")(table, pre, progress=False)
    get_extractor("hoof")(table, pre, progress=False)
    assert clip_counts == Counter({s: 2 for s in table.sample_ids})


def test_a_view_is_the_requested_subset_with_its_skipped_samples(table, tmp_path, clip_counts):
    df = table.df.copy()
    bad = df.loc[0, "sample_id"]
    df.loc[0, "path"] = str(tmp_path / "no-such-folder")
    broken = type(table)(df, table.report, table.name, table.scheme)
    pre = _pre(tmp_path, "views")
    with preprocessed_for(broken, pre, "hoof", {"apex_offset": True}) as (held,):
        assert bad in held.skipped
        some = broken.subset(broken.sample_ids[1:3])
        view = pipeline.preprocess(some, {**pre, "pairs": ["apex_offset"], "stack_sizes": [14]})
        assert view.sample_ids == some.sample_ids and view.skipped == {}
        item = view[some.sample_ids[0]]
        assert "uv_apex_offset" in item and "uv_onset_apex" not in item  # read as requested
        assert item["flow_apex_offset_14"].shape[-1] == 14
        np.testing.assert_array_equal(item["uv_apex_offset"], held[some.sample_ids[0]]["uv_apex_offset"])
        with_bad = pipeline.preprocess(broken.subset([bad, some.sample_ids[0]]), {**pre, "pairs": ["onset_apex"]})
        assert with_bad.skipped == {bad: held.skipped[bad]} and with_bad.sample_ids == [some.sample_ids[0]]
        view.close()  # closing a view removes nothing of the planned result
        assert held[some.sample_ids[0]]["uv_onset_apex"].shape[:2] == (48, 48)
    assert clip_counts == Counter(broken.sample_ids)


def test_other_rows_under_the_same_ids_are_not_served_from_the_plan(table, tmp_path, clip_counts):
    pre = _pre(tmp_path, "rows")
    df = table.df.copy()
    df["apex"] = df["onset"]  # same ids, other apex annotations: other flow
    moved = type(table)(df, table.report, table.name, table.scheme)
    with preprocessed_for(table, pre, "hoof", {}):
        pipeline.preprocess(moved, {**pre, "pairs": ["onset_apex"]})
    assert clip_counts == Counter({s: 2 for s in table.sample_ids})


def test_build_inputs_preprocesses_in_one_stage_before_the_features(table, tmp_path, clip_counts):
    from mekit.config import load_config
    from mekit.engine.factory import build_inputs

    pre = _pre(tmp_path, "runner")
    cfg = load_config(overrides={"data.loader": "synthetic", "data.options": SYNTH, "preprocess": pre,
                                 "features.name": "concat", "features.params": {"parts": FLOW_AND_FRAMES}})
    seen: list = []
    with events.listen(seen.append):
        fs = build_inputs(table, cfg)
    starts = [e for e in seen if e.kind == "stage_start"]
    assert [e["stage"] for e in starts] == ["preprocess"] and starts[0]["runs"] == 1
    progress = [(e["done"], e["total"]) for e in seen if e.kind == "progress"]
    assert progress == [(k, len(table)) for k in range(len(table) + 1)]  # announced at 0, then each clip
    assert seen[-1].kind == "stage_end" and (seen[-1]["done"], seen[-1]["cached"]) == (len(table), 0)
    assert clip_counts == Counter(table.sample_ids)
    _assert_concat_of(fs, _alone(table, _pre(tmp_path, "alone"), FLOW_AND_FRAMES))
    # all cached now: the stage is still shown, with nothing to compute
    seen.clear()
    with events.listen(seen.append):
        build_inputs(table, cfg)
    assert [(e.kind, e["stage"]) for e in seen] == [("stage_start", "preprocess"), ("stage_end", "preprocess")]
    assert (seen[-1]["total"], seen[-1]["cached"], seen[-1]["ok"]) == (0, len(table), True)
