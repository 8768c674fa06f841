"""MEGC spotting metrics: IoU, one-to-one matching, pooled counts, micro/macro, STRS, files."""

from __future__ import annotations

import pytest

from mekit.analysis.spot_metrics import (Interval, as_intervals, interval_iou, kind_from_duration,
                                         match_intervals, read_megc_submission, read_truth_csv, spotting_scores,
                                         strs, write_megc_submission)
from mekit.data.synthetic_long import plan_long_video
from mekit.errors import ConfigError, DataError


def iv(video, onset, offset, kind="micro", emotion=""):
    return Interval(video, onset, offset, kind, emotion)


# -- IoU --------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, expected", [
    ((0, 9), (0, 9), 1.0),
    ((0, 9), (0, 4), 0.5),          # 5 frames of 10: exactly the threshold
    ((10, 29), (10, 19), 0.5),
    ((0, 9), (5, 14), 5 / 15),
    ((0, 4), (5, 9), 0.0),          # adjacent: no shared frame
    ((0, 0), (0, 0), 1.0),          # one-frame intervals, ends included
    ((3, 3), (0, 9), 0.1),
])
def test_iou_counts_frames_with_both_ends(a, b, expected):
    assert interval_iou(*a, *b) == pytest.approx(expected)
    assert interval_iou(*b, *a) == pytest.approx(expected)


def test_iou_of_exactly_half_is_a_true_positive_and_just_below_is_not():
    truth = [iv("v", 0, 4)]
    hit = spotting_scores([iv("v", 0, 9)], truth)            # IoU 5/10
    assert (hit.micro.tp, hit.micro.fp, hit.micro.fn) == (1, 0, 0)
    assert hit.matches[0].iou == 0.5
    miss = spotting_scores([iv("v", 0, 10)], truth)          # IoU 5/11
    assert (miss.micro.tp, miss.micro.fp, miss.micro.fn) == (0, 1, 1)
    # a threshold that is not a binary fraction: 3/10 frames is exactly 0.3
    assert len(match_intervals([iv("v", 0, 9)], [iv("v", 7, 9)], threshold=0.3)) == 1
    assert len(match_intervals([iv("v", 0, 9)], [iv("v", 7, 9)], threshold=0.31)) == 0


# -- matching ---------------------------------------------------------------------------------
def test_a_ground_truth_is_matched_once():
    r = spotting_scores([iv("v", 10, 20), iv("v", 11, 21), iv("v", 10, 20)], [iv("v", 10, 20)])
    assert (r.micro.tp, r.micro.fp, r.micro.fn) == (1, 2, 0)
    assert r.micro.precision == pytest.approx(1 / 3) and r.micro.recall == 1.0
    assert len(r.matches) == 1 and r.matches[0].iou == 1.0  # an exact copy is the one kept, not the shifted one
    assert r.matches[0].spot in (0, 2)


def test_a_spotted_interval_is_matched_once():
    # [0, 9] covers two adjacent truths exactly half each: IoU 0.5 with both, one true positive
    r = spotting_scores([iv("v", 0, 9)], [iv("v", 0, 4), iv("v", 5, 9)])
    assert (r.micro.tp, r.micro.fp, r.micro.fn) == (1, 0, 1)


def test_matching_is_optimal_not_greedy():
    # greedy by IoU takes S1-A (0.9) and leaves S2 (which only reaches A) and B unmatched: 1 TP;
    # the optimal assignment S1-B (0.67), S2-A (0.54) finds 2
    truth = [iv("v", 0, 9), iv("v", 2, 7)]            # A, B
    spotted = [iv("v", 0, 8), iv("v", 3, 12)]         # S1, S2
    assert interval_iou(0, 8, 0, 9) == pytest.approx(0.9)
    assert interval_iou(3, 12, 2, 7) < 0.5
    r = spotting_scores(spotted, truth)
    assert (r.micro.tp, r.micro.fp, r.micro.fn) == (2, 0, 0)
    assert {(m.spot, m.truth) for m in r.matches} == {(0, 1), (1, 0)}
    # and the order the intervals are listed in does not matter
    r2 = spotting_scores(spotted[::-1], truth[::-1])
    assert (r2.micro.tp, r2.micro.fp, r2.micro.fn) == (2, 0, 0)


def test_intervals_only_match_within_their_video():
    r = spotting_scores([iv("a", 0, 9)], [iv("b", 0, 9)])
    assert (r.micro.tp, r.micro.fp, r.micro.fn) == (0, 1, 1)
    assert r.by_video["a"].fp == 1 and r.by_video["b"].fn == 1


# -- pooled counts, micro / macro / overall ----------------------------------------------------
def test_counts_are_pooled_over_videos_before_f1():
    truth = [iv("a", 0, 9), iv("a", 100, 109), iv("b", 0, 9), iv("c", 50, 59)]
    spotted = [iv("a", 0, 9), iv("a", 200, 209), iv("a", 300, 309), iv("b", 1, 10), iv("d", 0, 5)]
    r = spotting_scores(spotted, truth)
    assert (r.micro.tp, r.micro.fp, r.micro.fn) == (2, 3, 2)
    assert r.micro.precision == pytest.approx(2 / 5)
    assert r.micro.recall == pytest.approx(2 / 4)
    assert r.micro.f1 == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    per_video_mean = sum(c.f1 for c in r.by_video.values()) / len(r.by_video)
    assert r.micro.f1 != pytest.approx(per_video_mean)  # pooled, not averaged over videos
    assert {v: (c.tp, c.fp, c.fn) for v, c in r.by_video.items()} == {
        "a": (1, 2, 1), "b": (1, 0, 0), "c": (0, 0, 1), "d": (0, 1, 0)}


def test_micro_and_macro_are_scored_apart_and_summed_overall():
    truth = [iv("v", 0, 9, "micro"), iv("v", 100, 189, "macro"), iv("v", 300, 389, "macro")]
    spotted = [iv("v", 0, 9, "micro"),
               iv("v", 100, 189, "micro"),    # right place, wrong kind: a micro FP and a macro FN
               iv("v", 300, 380, "macro"),
               iv("v", 500, 520, "macro")]
    r = spotting_scores(spotted, truth)
    assert (r.micro.tp, r.micro.fp, r.micro.fn) == (1, 1, 0)
    assert (r.macro.tp, r.macro.fp, r.macro.fn) == (1, 1, 1)
    assert (r.overall.tp, r.overall.fp, r.overall.fn) == (2, 2, 1)
    assert r.overall.f1 == pytest.approx(2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3))
    d = r.as_dict()
    assert d["overall"]["tp"] == 2 and d["micro"]["f1"] == pytest.approx(2 / 3)


def test_untyped_spotted_intervals_take_their_kind_from_their_length():
    assert kind_from_duration(0, 14, 30) == "micro"      # 15 frames = 0.5 s
    assert kind_from_duration(0, 15, 30) == "macro"
    truth = [iv("v", 0, 14, "micro"), iv("v", 100, 159, "macro")]
    spotted = [Interval("v", 0, 14), Interval("v", 100, 159)]
    r = spotting_scores(spotted, truth, fps=30)
    assert (r.micro.tp, r.macro.tp, r.overall.fp) == (1, 1, 0)
    with pytest.raises(ConfigError, match="spotted interval 0 .*has no kind"):
        spotting_scores(spotted, truth)


def test_empty_sets_score_zero_not_crash():
    r = spotting_scores([], [iv("v", 0, 9)])
    assert (r.micro.tp, r.micro.fn, r.micro.precision, r.micro.f1) == (0, 1, 0.0, 0.0)
    r = spotting_scores([iv("v", 0, 9)], [])
    assert (r.micro.fp, r.micro.recall, r.micro.f1) == (1, 0.0, 0.0)


def test_synthetic_truth_scores_itself_perfectly_and_a_shift_breaks_it():
    truth = plan_long_video(seconds=120, seed=2)
    assert truth.micro and truth.macro
    r = spotting_scores(truth, truth)
    assert r.overall.f1 == 1.0 and r.micro.tp == len(truth.micro)
    # shifting every interval by its own length leaves nothing overlapping
    shifted = [Interval(truth.video, e.offset + 1, 2 * e.offset - e.onset + 1, e.kind) for e in truth.events]
    assert spotting_scores(shifted, truth).overall.tp == 0


# -- STRS ---------------------------------------------------------------------------------------
def test_strs_hand_computed():
    truth = [iv("v", 0, 9, emotion="negative"), iv("v", 100, 109, emotion="negative"),
             iv("v", 200, 209, emotion="positive"), iv("v", 300, 309, emotion="positive")]
    spotted = [iv("v", 0, 9, emotion="negative"),      # right
               iv("v", 101, 110, emotion="positive"),  # spotted, recognised wrong
               iv("v", 200, 210, emotion="positive"),  # right
               iv("v", 500, 509, emotion="negative")]  # false positive; truth 300-309 missed
    s = strs(spotted, truth)
    assert s.spotting.f1 == pytest.approx(0.75)
    # negative: P 1, R 1/2; positive: P 1/2, R 1 -> macro P = R = 3/4 -> F1 3/4
    assert s.recognition.precision == pytest.approx(0.75) and s.recognition.recall == pytest.approx(0.75)
    assert s.recognition.f1 == pytest.approx(0.75)
    assert s.strs == pytest.approx(0.75 * 0.75)
    assert s.recognition.uf1 == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_strs_reproduces_the_reference_example():
    # the worked example of Liong et al.'s STRS metric code (its README prints STRS: 0.2)
    gt = [("EP02_01f", 45, 85, "happiness"), ("EP03_02", 130, 160, "others"), ("EP04_02", 20, 75, "others"),
          ("EP01_11f", 45, 95, "repression"), ("EP02_04f", 30, 140, "repression")]
    pred = [("EP02_01f", 10, 70, "happiness"), ("EP03_02", 100, 170, "others"), ("EP04_02", 0, 70, "others"),
            ("EP01_11f", 20, 90, "happiness"), ("EP02_04f", 70, 140, "happiness")]
    s = strs([iv(*p[:3], emotion=p[3]) for p in pred], [iv(*g[:3], emotion=g[3]) for g in gt])
    assert (s.spotting.tp, s.spotting.fp, s.spotting.fn) == (3, 2, 2)
    assert s.spotting.f1 == pytest.approx(0.6)
    assert s.recognition.f1 == pytest.approx(1 / 3)
    assert round(s.strs, 4) == 0.2


def test_strs_perfect_recognition_of_one_class_is_not_zero():
    # every pair is class a, all right: the reference code's confusion_matrix().ravel() would
    # fail on the constant one-vs-rest labels and score class a zero; here a counts fully
    truth = [iv("v", 0, 9, emotion="a"), iv("v", 50, 59, emotion="b")]
    spotted = [iv("v", 0, 9, emotion="a")]
    s = strs(spotted, truth)
    assert s.recognition.per_class["a"]["precision"] == 1.0
    assert s.recognition.f1 == pytest.approx(0.5)  # P = (1 + 0) / 2, R = (1 + 0) / 2


def test_strs_needs_emotions_on_the_truth():
    with pytest.raises(DataError, match="no micro ground truth carries an emotion"):
        strs([iv("v", 0, 9)], [iv("v", 0, 9)])


# -- files --------------------------------------------------------------------------------------
def test_submission_round_trip(tmp_path):
    spotted = [iv("s01_v2", 10, 20, "micro", "surprise"), iv("s01_v1", 300, 420, "macro", "negative"),
               iv("s01_v1", 5, 9, "micro", "positive")]
    path = write_megc_submission(spotted, tmp_path / "sub.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "vid,pred_onset,pred_offset,type,emotion"
    assert lines[1] == "s01_v1,5,9,me,positive"
    assert lines[2] == "s01_v1,300,420,mae,negative"
    back = read_megc_submission(path)
    assert sorted(back, key=lambda v: (v.video, v.onset)) == sorted(spotted, key=lambda v: (v.video, v.onset))
    write_megc_submission([iv("v", 1, 2)], tmp_path / "plain.csv")
    assert (tmp_path / "plain.csv").read_text().splitlines()[0] == "vid,pred_onset,pred_offset,type"


def test_submission_reader_takes_the_common_variants(tmp_path):
    p = tmp_path / "alt.csv"
    p.write_text("video,onset,offset,type\nA,1,5,ME\nA,10,80,MaE\nB,3,4,\n")
    got = read_megc_submission(p)
    assert [(v.video, v.onset, v.offset, v.kind) for v in got] == [("A", 1, 5, "micro"), ("A", 10, 80, "macro"),
                                                                    ("B", 3, 4, "")]


def test_truth_csv_from_the_synthetic_generator(tmp_path):
    truth = plan_long_video(seconds=60, seed=1, video="clip")
    path = truth.write_csv(tmp_path / "clip.truth.csv")
    back = read_truth_csv(path)
    assert back == as_intervals(truth)
    assert [(v.onset, v.apex, v.offset, v.kind, v.emotion) for v in back] == \
           [(e.onset, e.apex, e.offset, e.kind, e.emotion) for e in truth.events]


@pytest.mark.parametrize("text, match", [
    ("video,onset,offset,kind\nv,10,5,micro\n", r"row 2: interval is empty or negative \(got \(10, 5\)\)"),
    ("video,onset,offset,kind\nv,1,5,micro\nv,1,x,macro\n", r"row 3: onset and offset must be whole frame numbers"),
    ("video,onset,offset,kind\nv,1,5,mega\n", r"row 2: unknown interval kind \(got 'mega'\)"),
    ("video,onset,offset,kind\nv,1,5,\n", r"row 2: no kind"),
    ("video,onset,kind\nv,1,micro\n", r"no 'offset' column"),
])
def test_bad_truth_files_name_file_row_and_value(tmp_path, text, match):
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=match) as e:
        read_truth_csv(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="cannot read the spotting submission"):
        read_megc_submission(tmp_path / "absent.csv")


def test_bad_in_memory_intervals():
    with pytest.raises(DataError, match="empty or negative"):
        spotting_scores([Interval("v", 5, 4, "micro")], [])
    with pytest.raises(DataError, match="unknown interval kind"):
        spotting_scores([{"video": "v", "onset": 1, "offset": 2, "kind": "huge"}], [])
    with pytest.raises(ConfigError, match="threshold"):
        match_intervals([], [], threshold=0)
