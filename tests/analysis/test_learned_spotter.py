"""The learned spotter: fitted on training sequences only, streamed like any spotter, saved as JSON;
and the semi-real sequence builder."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from test_spotting import Scene

from mekit.analysis.learned_spotter import (
    FILE_FORMAT,
    LearnedSpotter,
    fit_spotter,
    load_spotter,
    loso_spotters,
    save_spotter,
    score_sequence,
)
from mekit.analysis.semireal import semireal_sequences
from mekit.analysis.spotting import SPOTTERS, make_spotter, spotter_from_dict
from mekit.data.schema import SampleTable
from mekit.errors import ConfigError, DataError

FPS = 30
MOTION = {"span": 1.0}


def scene(seed: int, seconds: float = 16.0) -> Scene:
    """Micro-expressions of varied length and strength, one macro-expression and a blink."""
    rng = np.random.default_rng(seed)
    sc = Scene(FPS, seconds, seed=seed)
    for k, t in enumerate(np.arange(1.5, seconds - 2, 3.0)):
        if k == 2:
            sc.expression(t, 1.2, pixels=3.0)
        else:
            sc.expression(t + rng.uniform(0, 0.5), rng.uniform(0.2, 0.45), pixels=rng.uniform(0.7, 1.5))
    return sc


def truth_of(sc: Scene) -> list[tuple[int, int, str]]:
    return [(a, b, "micro" if (b - a + 1) / FPS <= 0.5 else "macro") for a, b in sc.truth]


def sequence(seed: int, group: str | None = None, truth=None):
    sc = scene(seed)
    return score_sequence(list(sc), FPS, motion=MOTION, name=f"scene{seed}", group=group or f"g{seed}",
                          truth=truth_of(sc) if truth is None else truth)


@pytest.fixture(scope="module")
def sequences():
    return [sequence(s) for s in range(4)]


@pytest.fixture(scope="module")
def fitted(sequences):
    return fit_spotter(sequences)


def stream(sp, frames) -> list:
    out = [iv for i, f in enumerate(frames) for iv in sp.push(i, f)]
    return out + sp.flush()


def test_fitted_spotter_finds_the_expressions_of_an_unseen_face(fitted):
    assert "learned" in SPOTTERS.names()
    sc = scene(11)
    out = stream(fitted, list(sc))
    hits = [max((iv.iou(t) for iv in out), default=0) >= 0.5 for t in sc.truth]
    assert sum(hits) >= len(sc.truth) - 1, (out, sc.truth)
    assert len(out) <= len(sc.truth) + 1
    assert {iv.kind for iv in out} <= {"micro", "macro"}
    assert all(iv.onset <= iv.apex <= iv.offset for iv in out)


def test_saved_file_round_trips_to_identical_intervals(fitted, tmp_path):
    path = save_spotter(fitted, tmp_path / "spotter.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == FILE_FORMAT and doc["name"] == "learned" and doc["training"]["fingerprint"]
    frames = list(scene(12))
    # a fresh copy: a spotter that has seen a stream keeps its noise statistics for the next
    want = stream(spotter_from_dict(fitted.to_dict()), frames)
    for again in (load_spotter(path), make_spotter(str(path), FPS), spotter_from_dict(doc)):
        assert isinstance(again, LearnedSpotter) and again.to_dict() == fitted.to_dict()
        assert stream(again, frames) == want


def test_stream_with_gaps_equals_the_batch_of_its_recorded_scores(fitted):
    frames: list = list(scene(13))
    frames[100:102] = [None] * 2        # bridged by the motion spotter, a cut in the context
    frames[250:300] = [None] * 50       # a long gap: the run ends
    sp = spotter_from_dict(fitted.to_dict())
    sp.record_scores()
    got = []
    out = []
    for i, f in enumerate(frames):
        out += sp.push(i, f)
        got += sp.take_scores()
    out += sp.flush()
    got += sp.take_scores()
    batch = sp.spot_scores(np.array([s.index for s in got]), np.array([s.score for s in got]),
                               np.stack([s.regions for s in got]))
    assert out == batch and out
    # and the same frames pushed into a fresh copy give the same again
    assert stream(spotter_from_dict(fitted.to_dict()), frames) == out


def test_thresholds_come_from_the_training_sequences(sequences, fitted):
    sel = fitted.training["selection"]
    assert (fitted.release, fitted.threshold) == (sel["release"], sel["threshold"])
    assert fitted.training["groups"] == ["g0", "g1", "g2", "g3"]
    # other training truth (every expression's extent halved) gives another fit
    halved = [score_sequence_like(s, [(a, (a + b) // 2, k) for a, b, k in s.truth]) for s in sequences]
    other = fit_spotter(halved)
    assert other.training["fingerprint"] != fitted.training["fingerprint"]
    assert other.to_dict()["model"] != fitted.to_dict()["model"]


def score_sequence_like(seq, truth):
    """The same recorded scores with another truth (no need to measure motion again)."""
    from dataclasses import replace

    return replace(seq, truth=tuple(truth), _cache={})


def test_loso_never_reads_the_held_out_subjects_truth(sequences):
    # Change the truth of one subject: only the folds that train on it may change. A fit that read
    # the held-out subject's truth (for its thresholds, say) would change its own fold too.
    base = {g: sp.to_dict() for g, sp in loso_spotters(sequences)}
    moved = [score_sequence_like(s, [(a + 5, b + 5, k) for a, b, k in s.truth]) if s.group == "g0" else s
             for s in sequences]
    after = {g: sp.to_dict() for g, sp in loso_spotters(moved)}
    assert after["g0"] == base["g0"]
    assert all(after[g]["model"] != base[g]["model"] for g in ("g1", "g2", "g3"))


def test_unfitted_learned_spotter_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="trained spotter file") as e:
        make_spotter("learned", FPS)
    assert len(str(e.value).splitlines()) == 1


def test_bad_spotter_files_are_refused_with_a_clear_line(fitted, tmp_path):
    good = json.loads(json.dumps({"format": FILE_FORMAT, "format_version": 1, **fitted.to_dict()}))
    cases = {"not_json.json": "{ not json", "format.json": json.dumps({**good, "format": "other"}),
             "version.json": json.dumps({**good, "format_version": 99}),
             "model.json": json.dumps({**good, "model": {**good["model"], "mean": [0.0, 1.0]}}),
             "threshold.json": json.dumps({**good, "params": {**good["params"], "threshold": 2.0}}),
             "name.json": json.dumps({**good, "name": "nope"})}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError) as e:
            load_spotter(tmp_path / name)
        msg = str(e.value)
        assert str(tmp_path / name) in msg and len(msg.splitlines()) == 1, msg
    with pytest.raises(DataError, match="cannot read"):
        load_spotter(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="takes no parameters"):
        make_spotter(str(tmp_path / "model.json"), FPS, threshold=3)


def test_fit_refuses_mixed_or_empty_training_data(sequences):
    from dataclasses import replace

    with pytest.raises(DataError, match="no training sequences"):
        fit_spotter([])
    with pytest.raises(DataError, match="no truth"):
        fit_spotter([score_sequence_like(s, []) for s in sequences])
    with pytest.raises(DataError, match="motion parameters"):
        fit_spotter([sequences[0], replace(sequences[1], motion={"span": 2.0}, _cache={})])


# ---------------------------------------------------------------------------------------------
# semi-real sequences
# ---------------------------------------------------------------------------------------------
def tiny_corpus(tmp_path, clips: dict[str, list[tuple[str, int, int]]], fps: float = 200.0) -> SampleTable:
    """Frame folders whose frame N is a flat image of grey level N (so a crop names its frame)."""
    records = []
    for subject, items in clips.items():
        for clip, on, off in items:
            folder = tmp_path / subject / clip
            folder.mkdir(parents=True)
            for f in range(on, off + 1):
                cv2.imwrite(str(folder / f"img{f}.png"), np.full((40, 36), f, np.uint8))
            records.append({"sample_id": f"tiny/{subject}/{clip}", "dataset": "tiny", "subject": f"tiny/{subject}",
                            "clip": clip, "media": "frames", "path": str(folder), "frame_template": "img{frame}.png",
                            "onset": on, "apex": (on + off) // 2, "offset": off, "fps": fps, "emotion": "happiness",
                            "label": "happiness"})
    return SampleTable.from_records(records)


def test_semireal_builder_puts_the_truth_where_the_clips_are(tmp_path):
    table = tiny_corpus(tmp_path, {"s1": [("a", 10, 40), ("b", 100, 230)], "s2": [("c", 50, 60)]})
    seqs = semireal_sequences(table, still=(0.1, 0.2), noise=0.0, size=16, seed=3)
    assert [s.group for s in seqs] == ["tiny/s1", "tiny/s2"]
    for s in seqs:
        crops = list(s.crops())
        assert len(crops) == s.n_frames and all(c.shape == (16, 16) and c.dtype == np.uint8 for c in crops)
        level = np.array([int(c[8, 8]) for c in crops])
        pos = 0
        for t, clip in zip(s.truth, s.clips, strict=True):
            on, off = int(clip.row["onset"]), int(clip.row["offset"])
            assert t.offset - t.onset == off - on and t.onset == pos + clip.pre
            assert (level[t.onset:t.offset + 1] == np.arange(on, off + 1)).all()
            assert (level[pos:t.onset] == on).all() and (level[t.offset + 1:t.offset + 1 + clip.post] == off).all()
            assert 20 <= clip.pre <= 40 and 20 <= clip.post <= 40          # 0.1-0.2 s at 200 fps
            assert t.kind == ("micro" if (off - on + 1) / 200 <= 0.5 else "macro")
            assert t.apex == t.onset + (on + off) // 2 - on and t.emotion == "happiness"
            pos = t.offset + 1 + clip.post
        assert pos == s.n_frames
    assert [t.kind for t in seqs[0].truth] == ["micro", "macro"]   # 31 and 131 frames at 200 fps


def test_semireal_noise_differs_per_frame_and_repeats_per_call(tmp_path):
    table = tiny_corpus(tmp_path, {"s1": [("a", 100, 104)]})
    (s,) = semireal_sequences(table, still=(0.05, 0.05), noise=1.5, size=16, seed=0)
    a, b = list(s.crops()), list(s.crops())
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert not (a[0] == a[1]).all() and abs(float(a[0].mean()) - 100) < 1


@pytest.mark.slow
def test_spotter_train_command_writes_a_file_analyze_can_load(tmp_path, monkeypatch, capsys):
    import sys

    from mekit.cli.main import main

    out = tmp_path / "spotter.json"
    monkeypatch.setattr(sys, "argv", ["mekit", "spotter", "train", str(out), "--synthetic", "2", "--seconds", "12",
                                      "--span", "1"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code in (0, None)
    sp = make_spotter(str(out), 30)
    assert isinstance(sp, LearnedSpotter) and sp.training["groups"] == ["synthetic_100000", "synthetic_100001"]
    assert "saved" in capsys.readouterr().out
