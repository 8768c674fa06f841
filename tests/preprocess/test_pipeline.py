"""The preprocessing pipeline: config, every stage, caching and invalidation, failures, resume,
parallel runs, every media kind, the CLI, and real CASME II clips where present."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from mekit.data.schema import SampleTable  # noqa: E402
from mekit.errors import ConfigError  # noqa: E402
from mekit.preprocess import pipeline  # noqa: E402
from mekit.preprocess.cache import Cache  # noqa: E402
from mekit.preprocess.pipeline import PreprocessConfig, preprocess, stage_keys  # noqa: E402

# detector 'none' + no mesh: no MediaPipe, so the fake-corpus tests stay fast
FAST = {"detector": "none", "landmarks": False, "size": 64, "workers": 1}


# -- a tiny fake corpus in the CASME II on-disk layout ---------------------------------------
def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 1.5)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def make_clip(root: Path, sub: str, clip: str, onset: int = 20, n: int = 9, apex_at: int = 4,
              shift: float = 3.0, seed: int = 0, ext: str = "png") -> Path:
    """Frames ``reg_img<onset..onset+n-1>`` where a central patch slides right, peaking at the apex."""
    folder = root / sub / clip
    folder.mkdir(parents=True, exist_ok=True)
    bg = _texture(96, 80, seed)
    patch = _texture(40, 40, seed + 100)
    for i in range(n):
        amp = shift * (i / apex_at if i <= apex_at else max(0.0, (n - 1 - i) / (n - 1 - apex_at)))
        img = bg.copy()
        m = np.float32([[1, 0, amp], [0, 1, 0]])
        moved = cv2.warpAffine(patch, m, (40, 40), borderMode=cv2.BORDER_REFLECT)
        img[28:68, 20:60] = moved
        cv2.imwrite(str(folder / f"reg_img{onset + i}.{ext}"), img)
    return folder


def fake_table(root: Path, n_clips: int = 3, apex: bool = True, **kw) -> SampleTable:
    recs = []
    for k in range(n_clips):
        sub, clip = f"sub{k // 2 + 1:02d}", f"EP{k:02d}"
        onset, n, apex_at = 20 + k, 9, 4
        folder = make_clip(root, sub, clip, onset=onset, n=n, apex_at=apex_at, seed=k, **kw)
        recs.append({"sample_id": f"fake/{sub}/{clip}", "dataset": "fake", "subject": f"fake/{sub}",
                     "clip": clip, "media": "frames", "path": str(folder),
                     "frame_template": "reg_img{frame}." + kw.get("ext", "png"),
                     "onset": onset, "apex": onset + apex_at if apex else None, "offset": onset + n - 1,
                     "fps": 200.0, "emotion": "happiness", "label": "happiness"})
    return SampleTable.from_records(recs, name="fake")


@pytest.fixture
def fake(tmp_path):
    return fake_table(tmp_path / "corpus")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from mekit.data.synthetic import load_synthetic

    return load_synthetic(tmp_path_factory.mktemp("synth"), n_subjects=2, clips_per_subject=2, frames=(10, 14))


def computed(result) -> dict[str, list[str]]:
    return {sid: m["computed"] for sid, m in result.meta.items()}


# -- config ------------------------------------------------------------------------------------
def test_config_defaults_roundtrip_and_overrides():
    c = PreprocessConfig()
    assert (c.detector, c.size, c.flow, c.pairs, c.stack_sizes) == ("auto", 128, "tvl1", ("onset_apex",), (28,))
    assert PreprocessConfig.from_dict(c.to_dict()) == c
    d = PreprocessConfig.from_dict({"flow": "dis", "stack_sizes": [28, 224]},
                                   {"flow_params.finest_scale": 1, "size": 112, "sampling.method": "uniform",
                                    "sampling.n": 8})
    assert d.flow_params == {"finest_scale": 1} and d.size == 112 and d.stack_sizes == (28, 224)
    assert d.sampling == {"method": "uniform", "n": 8}
    assert d.replace(size=64).size == 64 and d.size == 112
    assert PreprocessConfig.from_dict({"stack_sizes": 48}).stack_sizes == (48,)


@pytest.mark.parametrize("bad,match", [
    ({"flow_method": "tvl1"}, "unknown key"),
    ({"flow": "raft"}, "optical flow method"),
    ({"detector": "dlib"}, "detector"),
    ({"pairs": ["onset_offset"]}, "pairs"),
    ({"size": 4}, "size"),
    ({"stack_sizes": [0]}, "stack_sizes"),
    ({"normalise": "zscore"}, "normalisation"),
    ({"spot_apex": "sometimes"}, "spot_apex"),
    ({"sampling": {"method": "random", "n": 3}}, "frame sampler"),
    ({"sampling": {"method": "uniform"}}, "takes"),
    ({"magnify": {"alpha": 10}}, "sampling"),
    ({"workers": -1}, "workers"),
    ({"decode_reduce": 3}, "decode_reduce"),
])
def test_config_rejects_bad_values_naming_them(bad, match):
    with pytest.raises(ConfigError, match=match):
        PreprocessConfig.from_dict(bad)


def test_config_from_yaml(tmp_path):
    p = tmp_path / "pre.yaml"
    p.write_text("size: 96\nflow: farneback\npairs: [onset_apex, apex_offset]\n")
    c = PreprocessConfig.from_yaml(p, {"workers": 2})
    assert (c.size, c.flow, c.pairs, c.workers) == (96, "farneback", ("onset_apex", "apex_offset"), 2)
    p.write_text("preprocess:\n  size: 80\ndata:\n  loader: casme2\n")  # an experiment config
    assert PreprocessConfig.from_yaml(p).size == 80
    with pytest.raises(ConfigError, match="does not exist"):
        PreprocessConfig.from_yaml(tmp_path / "nope.yaml")


def test_bad_flow_parameter_stops_the_run_once(fake, tmp_path):
    with pytest.raises(ConfigError, match="unknown parameter"):
        preprocess(fake, {**FAST, "cache_dir": str(tmp_path / "c"), "flow_params": {"nscale": 3}}, progress=False)


# -- what a run produces ---------------------------------------------------------------------------
def test_synthetic_end_to_end_with_face_detection(synth, tmp_path):
    cfg = {"cache_dir": str(tmp_path / "c"), "workers": 1, "stack_sizes": [28, 112],
           "pairs": ["onset_apex", "apex_offset"]}
    res = preprocess(synth, cfg, progress=False)
    assert res.skipped == {} and len(res) == len(synth) and res.sample_ids == synth.sample_ids
    sid = synth.sample_ids[0]
    row = synth.row(sid)
    d = res[sid]
    assert (d["onset_frame"], d["apex_frame"], d["offset_frame"]) == (row["onset"], row["apex"], row["offset"])
    for k in ("onset", "apex", "offset"):
        assert d[k].shape == (128, 128, 3) and d[k].dtype == np.uint8
    assert d["uv_onset_apex"].shape == (128, 128, 2) and d["strain_onset_apex"].shape == (128, 128)
    assert d["flow"].shape == (3, 28, 28) and d["flow_112"].shape == (3, 112, 112)
    assert d["flow_apex_offset"].shape == (3, 28, 28)
    assert d["flow"].min() == 0.0 and d["flow"].max() == 1.0
    assert d["landmarks"].shape == (468, 2)
    assert 0 <= d["landmarks"].min() and d["landmarks"].max() < 128
    assert set(d["rois"]) >= {"left_eye", "right_eye", "mouth", "nose"}
    x0, y0, x1, y1 = d["rois"]["mouth"]
    assert 0 <= x0 < x1 <= 128 and y0 > 64  # the mouth is in the lower half of an aligned face
    assert res.meta[sid]["face_source"] == "mediapipe"
    assert res.meta[sid]["computed"] == ["align", "flow"]
    stacked = res.stack("flow")
    assert stacked.shape == (len(synth), 3, 28, 28)
    np.testing.assert_array_equal(stacked[1], res[synth.sample_ids[1]]["flow"])
    assert res.stack("flow_112", synth.sample_ids[:2]).shape == (2, 3, 112, 112)
    with pytest.raises(KeyError, match="not produced"):
        res.stack("frames")
    # the synthetic action moves pixels: the flow onset->apex is not empty
    assert np.abs(d["uv_onset_apex"]).max() > 0.3
    s = res.summary()
    assert s["done"] == len(synth) and s["computed"] == len(synth) and s["timings"]["flow"] > 0


@pytest.mark.parametrize("method", ["tvl1", "dis", "farneback"])
def test_flow_sees_the_known_motion_of_the_fake_clip(tmp_path, method):
    table = fake_table(tmp_path / "corpus", n_clips=1, shift=1.5)
    res = preprocess(table, {**FAST, "cache_dir": str(tmp_path / "c"), "decode_reduce": 1, "flow": method},
                     progress=False)
    d = res[table.sample_ids[0]]
    # detector 'none' maps the 80x96 frame onto a 64x64 crop: x scale 0.8; the patch moved +1.5 px
    u = d["uv_onset_apex"][..., 0]
    inner = u[26:48, 22:42]  # inside the patch, away from its edges
    assert np.median(inner) == pytest.approx(1.5 * 64 / 80, abs=0.12)
    assert np.abs(d["uv_onset_apex"][..., 1][26:48, 22:42]).mean() < 0.3
    assert abs(np.median(u[:12, :])) < 0.1  # the background does not move


def test_frame_sampling_methods(fake, tmp_path):
    from mekit.preprocess.temporal import uniform

    base = {**FAST, "cache_dir": str(tmp_path / "c"), "frame_size": 48}
    sid = fake.sample_ids[0]
    row = fake.row(sid)
    on, off = int(row["onset"]), int(row["offset"])
    res = preprocess(fake, {**base, "sampling": {"method": "uniform", "n": 5}}, progress=False)
    d = res[sid]
    assert d["frames"].shape == (5, 48, 48, 3) and d["frames"].dtype == np.uint8
    np.testing.assert_array_equal(d["frame_numbers"], uniform(on, off, 5))
    assert res.stack("frames").shape == (3, 5, 48, 48, 3)
    res = preprocess(fake, {**base, "pairs": [], "sampling": {"method": "all"}}, progress=False)
    d = res[sid]
    np.testing.assert_array_equal(d["frame_numbers"], np.arange(on, off + 1))
    assert "flow" not in d
    res2 = preprocess(fake, {**base, "sampling": {"method": "apex", "n": 3}}, progress=False)
    np.testing.assert_array_equal(res2[sid]["frame_numbers"], [row["apex"] - 1, row["apex"], row["apex"] + 1])
    # the same frame aligned by the same alignment is the same pixels whichever sampler asked
    np.testing.assert_array_equal(res2[sid]["frames"][1], d["frames"][int(row["apex"]) - on])
    res3 = preprocess(fake, {**base, "sampling": {"method": "interpolate", "n": 4}}, progress=False)
    assert res3[sid]["frames"].shape == (4, 48, 48, 3)
    np.testing.assert_array_equal(res3[sid]["frames"][0], d["frames"][0])
    np.testing.assert_array_equal(res3[sid]["frames"][-1], d["frames"][-1])


def test_magnification_changes_only_the_frames_stage(fake, tmp_path):
    base = {**FAST, "cache_dir": str(tmp_path / "c"), "frame_size": 48, "sampling": {"method": "uniform", "n": 4}}
    plain = preprocess(fake, base, progress=False)
    mag = preprocess(fake, {**base, "magnify": {"low_hz": 5.0, "high_hz": 60.0, "alpha": 8.0}}, progress=False)
    assert set(map(tuple, computed(mag).values())) == {("frames",)}
    sid = fake.sample_ids[0]
    a, b = plain[sid]["frames"].astype(int), mag[sid]["frames"].astype(int)
    assert a.shape == b.shape and mag[sid]["frames"].dtype == np.uint8
    np.testing.assert_array_equal(plain[sid]["frame_numbers"], mag[sid]["frame_numbers"])
    assert np.abs(a - b).mean() > 1.0  # the moving patch is exaggerated
    none = preprocess(fake, {**base, "magnify": {"low_hz": 5.0, "high_hz": 60.0, "alpha": 0.0}}, progress=False)
    np.testing.assert_array_equal(none[sid]["frames"], plain[sid]["frames"])


def test_apex_is_spotted_where_missing_and_on_demand(synth, tmp_path):
    df = synth.df.copy()
    truth = dict(zip(df["sample_id"], df["apex"].astype(int)))
    df["apex"] = None
    no_apex = SampleTable(df, name="synthetic")
    cfg = {"cache_dir": str(tmp_path / "c"), "workers": 1, "detector": "none", "landmarks": False}
    res = preprocess(no_apex, cfg, progress=False)
    assert res.skipped == {}
    errors = [abs(res.meta[s]["apex"] - truth[s]) for s in res.sample_ids]
    assert max(errors) <= 3, errors
    assert all(res.meta[s]["apex"] == res.meta[s]["apex_spotted"] for s in res.sample_ids)
    assert all("apex" in res.meta[s]["computed"] for s in res.sample_ids)
    spotted = {s: res.meta[s]["apex"] for s in res.sample_ids}
    # 'always': the annotation is kept for comparison, the spotted apex is used
    res = preprocess(synth, {**cfg, "spot_apex": "always"}, progress=False)
    m = res.meta[synth.sample_ids[0]]
    assert m["apex_annotated"] == truth[synth.sample_ids[0]]
    assert m["apex"] == m["apex_spotted"] == spotted[synth.sample_ids[0]]
    assert res[synth.sample_ids[0]]["apex_frame"] == spotted[synth.sample_ids[0]]
    # spotting ignores the annotation, so the spotted apex and its flow came from the cache
    assert m["computed"] == []


# -- caching and invalidation ------------------------------------------------------------------
def test_each_parameter_recomputes_only_the_stages_it_affects(fake, tmp_path):
    base = {**FAST, "cache_dir": str(tmp_path / "c")}
    sids = fake.sample_ids
    first = preprocess(fake, base, progress=False)
    assert set(map(tuple, computed(first).values())) == {("align", "flow")}

    again = preprocess(fake, base, progress=False)
    assert again.n_cached == 3 and again.n_computed == 0
    np.testing.assert_array_equal(again.stack("flow"), first.stack("flow"))

    def stages_after(**change):
        return set(map(tuple, computed(preprocess(fake, {**base, **change}, progress=False)).values()))

    assert stages_after(flow="dis") == {("flow",)}                  # alignment reused
    assert stages_after(size=48) == {("flow",)}                      # crop size: flow, not face
    assert stages_after(flow_params={"warps": 2}) == {("flow",)}
    assert stages_after(pairs=["onset_apex", "apex_offset"]) == {("flow",)}
    assert stages_after(margin=0.1) == {("align", "flow")}           # face box: everything
    assert stages_after(stack_sizes=[28, 224], normalise="fixed") == {()}  # derived on access
    assert stages_after(sampling={"method": "uniform", "n": 3}) == {("frames",)}
    assert stages_after(sampling={"method": "uniform", "n": 4}) == {("frames",)}
    assert stages_after(sampling={"method": "uniform", "n": 3}, workers=2) == {()}  # workers: no key
    res = preprocess(fake, {**base, "stack_sizes": [28, 224]}, progress=False)
    assert res[sids[0]]["flow_224"].shape == (3, 224, 224)

    cache = Cache(tmp_path / "c")
    assert len(cache.entries("align")) == 2 * 3  # base alignment + margin 0.1
    # changing an annotation changes that clip's keys only
    df = fake.df.copy()
    df.loc[0, "apex"] = int(df.loc[0, "apex"]) + 1
    res = preprocess(SampleTable(df), base, progress=False)
    assert computed(res) == {sids[0]: ["flow"], sids[1]: [], sids[2]: []}  # the face box is kept


def test_stage_keys_follow_dependencies(fake):
    row = pipeline._rows(fake)[0]
    k = stage_keys(row, PreprocessConfig(**{**FAST}))
    assert set(k) == {"align", "flow"}
    k2 = stage_keys(row, PreprocessConfig(**{**FAST, "flow": "dis"}))
    assert k2["align"] == k["align"] and k2["flow"] != k["flow"]
    k3 = stage_keys({**row, "apex": None}, PreprocessConfig(**FAST))
    assert "apex" in k3
    k4 = stage_keys(row, PreprocessConfig(**{**FAST, "pairs": [], "sampling": {"method": "all"}}))
    assert set(k4) == {"align", "frames"}


def test_corrupted_entry_is_recomputed_alone(fake, tmp_path, caplog):
    base = {**FAST, "cache_dir": str(tmp_path / "c")}
    first = preprocess(fake, base, progress=False)
    ref = first[fake.sample_ids[1]]["flow"]
    victim = Cache(tmp_path / "c").entries("flow")[0]
    victim.write_bytes(victim.read_bytes()[:100])
    res = preprocess(fake, base, progress=False)
    assert "corrupt" in caplog.text
    assert sorted(map(tuple, computed(res).values())) == [(), (), ("flow",)]
    assert res.n_computed == 1
    np.testing.assert_array_equal(res[fake.sample_ids[1]]["flow"], ref)


def test_interrupted_run_resumes_from_the_cache(fake, tmp_path, monkeypatch):
    base = {**FAST, "cache_dir": str(tmp_path / "c")}
    done = []

    def crash_after_two(meta):
        done.append(meta["sample_id"])
        if len(done) == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(pipeline, "_on_clip_done", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        preprocess(fake, base, progress=False)
    monkeypatch.undo()
    res = preprocess(fake, base, progress=False)
    assert res.n_cached == 2 and res.n_computed == 1
    assert [s for s in res.sample_ids if res.meta[s]["computed"]] == [fake.sample_ids[2]]


_KILL_SCRIPT = """
import json, sys, time
from pathlib import Path
from mekit.data.schema import SampleTable
from mekit.preprocess import pipeline
args = json.loads(sys.argv[1])
table = SampleTable.from_records(args["records"])
marker = Path(args["marker"])
seen = []
def hook(meta):
    seen.append(meta["sample_id"])
    if len(seen) == 2:
        marker.write_text("2")
        time.sleep(120)
pipeline._on_clip_done = hook
pipeline.preprocess(table, args["config"], progress=False)
"""


@pytest.mark.slow
def test_killed_process_leaves_a_usable_cache(fake, tmp_path):
    base = {**FAST, "cache_dir": str(tmp_path / "c")}
    marker = tmp_path / "marker"
    recs = fake.df.drop(columns=["action_units"]).astype(object).where(fake.df.notna(), None)
    args = {"records": recs.to_dict("records"), "marker": str(marker), "config": base}
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, json.dumps(args, default=str)])
    try:
        deadline = time.time() + 60
        while not marker.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), "the child never got two clips done"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    res = preprocess(fake, base, progress=False)
    assert res.n_cached == 2 and res.n_computed == 1 and res.skipped == {}
    assert not list((tmp_path / "c").rglob("*.tmp"))


def test_fully_cached_run_starts_no_worker(fake, tmp_path, monkeypatch):
    base = {**FAST, "cache_dir": str(tmp_path / "c"), "workers": 2}
    preprocess(fake, base, progress=False)

    def no_workers(*a, **k):
        raise AssertionError("workers started although everything was cached")

    monkeypatch.setattr(pipeline, "_run", no_workers)
    res = preprocess(fake, base, progress=False)
    assert res.n_cached == 3


@pytest.mark.slow
def test_fully_cached_run_does_not_import_mediapipe(synth, tmp_path):
    code = ("import json, sys; from mekit.data.synthetic import load_synthetic; "
            "from mekit.preprocess.pipeline import preprocess; "
            f"t = load_synthetic({str(Path(synth.df['path'][0]).parents[1])!r}); "
            f"r = preprocess(t, {{'cache_dir': {str(tmp_path / 'c')!r}, 'workers': 1}}, progress=False); "
            "print(json.dumps([r.n_computed, r.n_cached, 'mediapipe' in sys.modules]))")
    out = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     check=True).stdout.strip().splitlines()[-1]) for _ in range(2)]
    assert out[0] == [len(synth), 0, True]     # cold: faces found with MediaPipe
    assert out[1] == [0, len(synth), False]    # warm: nothing computed, MediaPipe never imported


def test_parallel_run_matches_serial(fake, tmp_path):
    serial = preprocess(fake, {**FAST, "cache_dir": str(tmp_path / "a")}, progress=False)
    par = preprocess(fake, {**FAST, "cache_dir": str(tmp_path / "b"), "workers": 2}, progress=False)
    assert par.n_computed == 3 and par.skipped == {}
    np.testing.assert_allclose(par.stack("flow"), serial.stack("flow"), atol=1e-6)
    np.testing.assert_array_equal(par.stack("onset"), serial.stack("onset"))


def test_cache_off_keeps_nothing_behind(fake, tmp_path):
    res = preprocess(fake, {**FAST, "cache": False, "cache_dir": str(tmp_path / "c")}, progress=False)
    assert res[fake.sample_ids[0]]["flow"].shape == (3, 28, 28)
    tmp = res.cache.root
    assert tmp.exists() and not (tmp_path / "c").exists()
    res.close()
    assert not tmp.exists()


# -- bad clips -----------------------------------------------------------------------------------
def test_bad_clips_are_skipped_with_reasons_and_the_rest_kept(tmp_path):
    table = fake_table(tmp_path / "corpus", n_clips=4)
    rows = table.df
    Path(rows.loc[1, "path"], f"reg_img{int(rows.loc[1, 'apex'])}.png").unlink()         # missing frame
    Path(rows.loc[2, "path"], f"reg_img{int(rows.loc[2, 'onset'])}.png").write_bytes(b"not an image")
    res = preprocess(table, {**FAST, "cache_dir": str(tmp_path / "c")}, progress=False)
    sids = table.sample_ids
    assert set(res.skipped) == {sids[1], sids[2]}
    assert "missing" in res.skipped[sids[1]] and f"reg_img{int(rows.loc[1, 'apex'])}.png" in res.skipped[sids[1]]
    assert "cannot decode" in res.skipped[sids[2]] and "reg_img" in res.skipped[sids[2]]
    assert res.sample_ids == [sids[0], sids[3]]
    with pytest.raises(KeyError, match="skipped"):
        res[sids[1]]
    # the good clips are cached: fixing nothing and running again recomputes only the bad ones
    again = preprocess(table, {**FAST, "cache_dir": str(tmp_path / "c")}, progress=False)
    assert again.n_cached == 2 and set(again.skipped) == {sids[1], sids[2]}


def test_clip_without_a_face_is_skipped_naming_the_sample(fake, tmp_path):
    res = preprocess(fake, {**FAST, "detector": "haar", "cache_dir": str(tmp_path / "c")}, progress=False)
    assert set(res.skipped) == set(fake.sample_ids)
    assert all("no face" in why for why in res.skipped.values())
    assert len(res) == 0


# -- other media -----------------------------------------------------------------------------------
def _record(sid, media, path, **kw):
    return {"sample_id": f"x/{sid}", "dataset": "x", "subject": "x/s1", "clip": sid, "media": media,
            "path": str(path), "emotion": "happiness", "label": "happiness", **kw}


def test_still_image_flow_image_and_video(tmp_path):
    img = tmp_path / "face.png"
    cv2.imwrite(str(img), _texture(90, 70, 3))
    flow_png = tmp_path / "flow.png"
    stack = np.zeros((40, 40, 3), np.uint8)
    stack[..., 2] = 200  # R channel = u
    stack[10:20, :, 1] = 255  # G = v, a band
    cv2.imwrite(str(flow_png), stack)
    import av

    video = tmp_path / "clip.avi"
    with av.open(str(video), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 80, 64, "bgr0"
        base = _texture(64, 80, 5)
        for i in range(6):
            frame = np.roll(base, i, axis=1)
            for p in s.encode(av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    table = SampleTable.from_records([
        _record("still", "image", img),
        _record("flowimg", "flow", flow_png),
        _record("vid", "video", video, onset=0, apex=3, offset=5, fps=25.0),
    ])
    res = preprocess(table, {**FAST, "cache_dir": str(tmp_path / "c"), "stack_sizes": [28, 48]}, progress=False)
    assert res.skipped == {}
    still = res["x/still"]
    assert still["onset_frame"] == still["apex_frame"] == 0
    assert np.abs(still["uv_onset_apex"]).max() < 1e-3  # a still image is its own apex: no motion
    fl = res["x/flowimg"]
    assert fl["flow"].shape == (3, 28, 28) and fl["flow_48"].shape == (3, 48, 48) and "onset" not in fl
    np.testing.assert_allclose(fl["flow"][0], 200 / 255, atol=1e-3)  # R -> u
    assert fl["flow"][1].max() > 0.9 and fl["flow"][1].min() < 0.1
    vid = res["x/vid"]
    assert vid["apex_frame"] == 3
    u = np.median(vid["uv_onset_apex"][16:48, 16:48, 0])
    assert u == pytest.approx(3 * 64 / 80, abs=0.4)  # 3 px right in the 80 px frame -> 64 px crop


# -- CLI ----------------------------------------------------------------------------------------------
def test_cli_preprocess_prints_a_summary(synth, tmp_path):
    from typer.testing import CliRunner

    from mekit.cli.main import app

    root = Path(synth.df["path"][0]).parents[1]
    cfg = tmp_path / "pre.yaml"
    cfg.write_text("detector: none\nlandmarks: false\nsize: 64\n")
    args = ["preprocess", "synthetic", "--root", str(root), "--config", str(cfg), "workers=1",
            f"cache_dir={tmp_path / 'c'}", "flow=dis"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in out.output.splitlines() if line.count("│") == 3}
    assert rows["done"] == rows["computed"] == str(len(synth)) and rows["skipped"] == "0"
    assert float(rows["total (wall)"]) > 0
    out = CliRunner().invoke(app, args)
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in out.output.splitlines() if line.count("│") == 3}
    assert out.exit_code == 0 and rows["cached"] == str(len(synth)) and rows["computed"] == "0"
    bad = CliRunner().invoke(app, ["preprocess", "synthetic", "--root", str(root), "flow=raft"])
    assert bad.exit_code != 0 and "raft" in str(bad.exception)


# -- real data ------------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_casme2_clips_align_and_flow(casme2_root, tmp_path):
    from mekit.data import load_dataset

    table = load_dataset("casme2", casme2_root)
    sub = table.subset(table.sample_ids[:4])
    res = preprocess(sub, {"cache_dir": str(tmp_path / "c"), "workers": 1, "stack_sizes": [28, 224],
                          "detector": "mediapipe"},
                     progress=False)
    assert res.skipped == {} and len(res) == 4
    d = res[sub.sample_ids[0]]
    assert d["flow"].shape == (3, 28, 28) and d["flow_224"].shape == (3, 224, 224)
    assert d["landmarks"].shape == (468, 2) and d["onset"].shape == (128, 128, 3)
    m = res.meta[sub.sample_ids[0]]
    assert m["face_source"] == "mediapipe" and m["fit_frame"] == m["onset"]
    # CASME II frames are ~280 px: half-size JPEG decoding still has >= 1 px per crop pixel
    assert m["reduce"] == 2
    # a micro-expression is small: sub-pixel to a few pixels at 128 px
    mags = [np.linalg.norm(res[s]["uv_onset_apex"], axis=-1) for s in sub.sample_ids]
    assert all(0.05 < np.percentile(g, 99) < 5 for g in mags)



_PARENT_PID: list[int] = []


def _hang_in_workers(task):
    """Stands in for a worker that never returns (module level: the pool pickles it by name)."""
    import os
    import time as _time

    from mekit.preprocess import pipeline

    if os.getpid() != _PARENT_PID[0]:
        _time.sleep(3600)
    return pipeline._real_process_clip(task)


@pytest.mark.slow
def test_hung_workers_are_replaced_by_in_process_work(fake, tmp_path, monkeypatch):
    """A worker pool that never returns (a lock inherited through fork) must not hang the run."""
    import os

    from mekit.preprocess import pipeline

    _PARENT_PID[:] = [os.getpid()]
    monkeypatch.setattr(pipeline, "_real_process_clip", pipeline._process_clip, raising=False)
    monkeypatch.setattr(pipeline, "_process_clip", _hang_in_workers)
    res = preprocess(fake, {**FAST, "cache_dir": str(tmp_path / "c"), "workers": 2, "worker_timeout": 2.0},
                     progress=False)
    assert res.n_computed == len(fake) and res.skipped == {}
