"""Extracting intervals of a recording into a CASME II-style dataset that the CASME II loader reads."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mekit import events
from mekit.data.casme2 import load_casme2
from mekit.data.extract import PLACEHOLDER_EMOTION, extract_intervals, read_intervals
from mekit.errors import ConfigError, DataError
from mekit.media import open_source

FPS = 30.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """12 s at 30 fps (360 frames, MJPG): a macro-expression at 46..86 and a micro one at 341..349."""
    from mekit.data.synthetic_long import generate_long_video

    truth = generate_long_video(tmp_path_factory.mktemp("rec") / "rec.avi", seconds=12, fps=FPS, width=320,
                                height=240, seed=1, n_micro=1, n_macro=1)
    assert [(e.onset, e.offset) for e in truth.events] == [(46, 86), (341, 349)]
    return truth


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _frames_on_disk(folder: str | Path) -> list[int]:
    return sorted(int(p.stem.removeprefix("reg_img")) for p in Path(folder).glob("reg_img*.jpg"))


def _decoded(video: Path, index: int) -> np.ndarray:
    with open_source(video, start=index) as src:
        frame = next(iter(src))
    assert frame.index == index
    return frame.image


def test_truth_intervals_load_back_with_the_casme2_loader(recording, tmp_path):
    got: list = []
    with events.listen(got.append):
        res = extract_intervals(recording.path, recording.truth_path, tmp_path / "ds", subject=3)
    assert res.taken == 2 and res.problems == [] and len(res.clips) == 2
    table = load_casme2(tmp_path / "ds")
    assert table.report.problems == [] and table.report.missing == []
    df = table.df.sort_values("onset").reset_index(drop=True)
    assert len(df) == len(recording.events)
    for row, ev in zip(df.itertuples(), recording.events):
        assert (row.onset, row.apex, row.offset) == (ev.onset, ev.apex, ev.offset)
        assert row.subject == "casme2/sub03" and row.emotion == ev.emotion
        assert row.fps == FPS  # the recording's rate, not the corpus's 200 fps
        assert _frames_on_disk(row.path) == list(range(ev.onset, ev.offset + 1))
    # the files are the recording's own frames, numbered as it numbers them (JPEG error allowed)
    ev = recording.events[0]
    from mekit.media import read_image

    written = read_image(Path(df.path[0]) / f"reg_img{ev.apex}.jpg", rgb=False).astype(float)
    source = _decoded(recording.path, ev.apex).astype(float)
    assert written.shape == source.shape and np.abs(written - source).mean() < 2.0
    neighbour = _decoded(recording.path, ev.apex + 5).astype(float)  # a wrong frame would be further off
    assert np.abs(written - source).mean() < np.abs(written - neighbour).mean()
    stages = [e for e in got if e.get("stage") == "extract"]
    assert stages[0].kind == "stage_start" and stages[-1].kind == "stage_end" and stages[-1]["ok"]


def test_an_analyze_intervals_csv_with_several_videos(recording, tmp_path):
    header = ["video", "onset", "apex", "offset", "onset_s", "apex_s", "offset_s", "kind", "score", "flags", "label",
              "p_happy", "p_sad"]
    rows = [["rec", 50, 60, 80, 1.6667, 2.0, 2.6667, "macro", 0.9, "", "happy", 0.8, 0.2],
            ["other", 10, 12, 20, 0.3333, 0.4, 0.6667, "micro", 0.5, "", "sad", 0.1, 0.9],
            ["rec", 300, 303, 310, 10.0, 10.1, 10.3333, "other", 0.4, "", "", "", ""]]
    csv_path = _write_csv(tmp_path / "intervals.csv", header, rows)
    res = extract_intervals(recording.path, csv_path, tmp_path / "ds", sheet_format="csv")
    assert (res.taken, res.other_videos, res.problems) == (2, 0 + 1, [])
    assert res.sheet.name == "CASME2-coding-extracted.csv"
    df = load_casme2(tmp_path / "ds").df.sort_values("onset")
    assert list(zip(df.onset, df.apex, df.offset)) == [(50, 60, 80), (300, 303, 310)]
    assert list(df.emotion) == ["happy", PLACEHOLDER_EMOTION]  # no label: the placeholder the loader keeps
    assert list(df.subject.unique()) == ["casme2/sub01"]
    assert any("'others'" in n for n in res.notes)
    # --kind filters rows by the kind column
    # a frame rate the sheet cannot give is noted and the corpus's own is used
    sheet = tmp_path / "ds" / "CASME2-coding-extracted.csv"
    text = sheet.read_text().splitlines()
    col = text[0].split(",").index("FPS")
    cells = text[1].split(",")
    cells[col] = "fast"
    sheet.write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n")
    table = load_casme2(tmp_path / "ds")
    assert sorted(table.df.fps) == [FPS] * (len(table) - 1) + [200.0]
    assert any("frame rate 'fast' is not a positive number" in n for n in table.report.notes)
    only = extract_intervals(recording.path, csv_path, tmp_path / "macro", kinds=["macro"])
    assert (len(only.clips), only.other_kinds) == (1, 1)


def test_a_megc_submission_gives_clips_without_an_apex(recording, tmp_path):
    csv_path = _write_csv(tmp_path / "megc.csv", ["vid", "pred_onset", "pred_offset", "type"],
                          [["rec", 46, 86, "mae"], ["rec.avi", 341, 349, "me"], ["rec2", 1, 5, "me"]])
    res = extract_intervals(recording.path, csv_path, tmp_path / "ds")
    assert (res.taken, res.other_videos) == (2, 1)
    table = load_casme2(tmp_path / "ds")
    df = table.df.sort_values("onset")
    assert list(zip(df.onset, df.offset)) == [(46, 86), (341, 349)] and df.apex.isna().all()
    assert [_frames_on_disk(p) for p in df.path] == [list(range(46, 87)), list(range(341, 350))]
    assert any("no apex" in n for n in table.report.notes)


def test_seconds_only_rows_and_rows_as_dicts(recording, tmp_path):
    rows = [{"onset_s": 46 / FPS, "offset_s": 86 / FPS, "apex_s": 59 / FPS, "emotion": "surprise"}]
    res = extract_intervals(recording.path, rows, tmp_path / "ds", subject="sub07")
    (clip,) = res.clips
    assert (clip["onset"], clip["apex"], clip["offset"]) == (46, 59, 86)
    (row,) = load_casme2(tmp_path / "ds").df.itertuples()
    assert row.subject == "casme2/sub07" and row.label == "surprise"


def test_bad_rows_are_reported_by_row_and_skipped(recording, tmp_path):
    csv_path = _write_csv(tmp_path / "bad.csv", ["video", "onset", "apex", "offset", "kind"],
                          [["rec", 80, "", 46, "macro"],      # row 2: offset before onset
                           ["rec", 341, 345, 400, "micro"],   # row 3: past the last frame (359)
                           ["rec", "abc", "", 60, "micro"],   # row 4: not a number
                           ["rec", 46, 90, 86, "macro"],      # row 5: apex outside: left empty, kept
                           ["rec", 100, 105, 110, "micro"]])  # row 6: fine
    res = extract_intervals(recording.path, csv_path, tmp_path / "ds")
    assert [(c["onset"], c["apex"], c["offset"]) for c in res.clips] == [(46, None, 86), (100, 105, 110)]
    text = "\n".join(res.problems)
    assert "bad.csv row 2: offset 46 is before onset 80; expected onset <= offset; row skipped" in text
    assert "bad.csv row 3: offset 400 is past the recording's last frame 359" in text
    assert "bad.csv row 4: onset holds 'abc'; expected a frame number" in text
    assert "bad.csv row 5: apex 90 is outside onset..offset 46..86; apex left empty, row kept" in text
    assert len(res.problems) == 4 and len(load_casme2(tmp_path / "ds")) == 2
    # nothing usable at all is one clear error naming the file
    all_bad = _write_csv(tmp_path / "all_bad.csv", ["video", "onset", "offset"], [["rec", 9, 3]])
    with pytest.raises(DataError, match=r"all_bad\.csv.*none of the 1 interval.*row 2: offset 3 is before onset 9"):
        extract_intervals(recording.path, all_bad, tmp_path / "none")
    assert not (tmp_path / "none").exists()  # nothing is created when there is nothing to write
    with pytest.raises(DataError, match=r"no interval of video 'rec'.*\['other'\]"):
        extract_intervals(recording.path, [{"video": "other", "onset": 1, "offset": 2}], tmp_path / "none2")
    with pytest.raises(DataError, match="no onset/offset columns"):
        extract_intervals(recording.path, [{"start": 1, "end": 2}], tmp_path / "none3")


def test_context_keeps_frames_around_and_the_sheet_keeps_the_interval(recording, tmp_path):
    res = extract_intervals(recording.path, recording.truth_path, tmp_path / "ds", context=0.5)  # 15 frames
    assert [(c["first_frame"], c["last_frame"]) for c in res.clips] == [(31, 101), (326, 359)]  # cut at the end
    df = load_casme2(tmp_path / "ds").df.sort_values("onset")
    assert list(zip(df.onset, df.offset)) == [(46, 86), (341, 349)]
    assert [_frames_on_disk(p) for p in df.path] == [list(range(31, 102)), list(range(326, 360))]


def test_an_existing_dataset_is_refused_unless_overwritten_or_appended_to(recording, tmp_path):
    out = tmp_path / "ds"
    first = [{"onset": 46, "offset": 86, "apex": 59}]
    extract_intervals(recording.path, first, out)
    with pytest.raises(DataError, match="exists and is not empty"):
        extract_intervals(recording.path, first, out)
    more = [{"onset": 46, "offset": 86}, {"onset": 341, "offset": 349}]
    res = extract_intervals(recording.path, more, out, append=True)
    assert len(res.clips) == 1 and "already in the dataset" in res.problems[0] and "intervals[0]" in res.problems[0]
    assert len(load_casme2(out)) == 2
    res = extract_intervals(recording.path, [{"onset": 100, "offset": 110}], out, overwrite=True)
    df = load_casme2(out).df
    assert list(df.onset) == [100] and not (out / "sub01" / "rec_000046-000086").exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # staging folders are removed
    with pytest.raises(DataError, match="no CASME2-coding-extracted"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "x.txt").write_text("x")
        extract_intervals(recording.path, first, tmp_path / "other", append=True)


def test_face_crop_from_a_frames_csv(recording, tmp_path):
    rows = [[i, round(i / FPS, 4), "tracked", 100, 60, 200, 180] for i in range(0, 120)]
    frames_csv = _write_csv(tmp_path / "frames.csv", ["index", "time_s", "status", "x0", "y0", "x1", "y1"], rows)
    res = extract_intervals(recording.path, [{"onset": 46, "offset": 86}, {"onset": 341, "offset": 349}],
                            tmp_path / "ds", crop="face", frames_csv=frames_csv, margin=0.0)
    assert len(res.clips) == 1 and "gives no face box for frames 341..349" in res.problems[0]
    from mekit.media import read_image

    img = read_image(Path(res.clips[0]["folder"]) / "reg_img50.jpg", rgb=False).astype(float)
    assert img.shape[:2] == (120, 120)  # the square of the box's longer side
    whole = _decoded(recording.path, 50).astype(float)
    assert np.abs(img - whole[60:180, 90:210]).mean() < 2.0
    with pytest.raises(ConfigError, match="frames.csv"):
        extract_intervals(recording.path, [{"onset": 46, "offset": 86}], tmp_path / "x", crop="face")


def test_read_intervals_counts_and_options(tmp_path):
    parsed = read_intervals([{"video": "a", "onset": 1, "offset": 3}, {"video": "b", "onset": 1, "offset": 3},
                             {"video": "a.mp4", "onset_s": 1.0, "offset_s": 2.0}], fps=10, video="a")
    assert (parsed.taken, parsed.other_videos) == (2, 1)
    assert [(r.onset, r.offset) for r in parsed.rows] == [(1, 3), (10, 20)]
    with pytest.raises(ConfigError, match="kind 'tiny'"):
        read_intervals([{"onset": 1, "offset": 2}], fps=10, kinds=["tiny"])
    with pytest.raises(ConfigError, match="subject 'alice'"):
        extract_intervals(tmp_path / "v.avi", [], tmp_path / "o", subject="alice")


def test_front_door_name():
    import mekit

    assert mekit.extract is extract_intervals
