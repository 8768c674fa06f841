"""A MEGC 2019 flow-image set written by mekit's writer in HTNet's exact layout (the CSV HTNet's
main_HTNet.py reads, ``<sub>_<filename_o> .png`` images with the space before the extension), and
the flow-image loader reading it back with the composite's corpora, subjects and labels; on real
CASME II clips too (skipped where ../shared/data/CASME2 is absent)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from mekit.data import load_dataset
from mekit.data.flow_images import HTNET_COLUMNS, HTNET_CSV, HTNET_IMAGES, load_flow_images
from mekit.preprocess.export import export_flow_image_set
from tests.conftest import synthetic_flow_image_set

PRE = {"detector": "none", "landmarks": False, "workers": 1}
#: the options the shipped configs/megc2019_flow_images_*.yaml give the loader
CONFIG_OPTIONS = {"csv": HTNET_CSV, "images_dir": HTNET_IMAGES, "file_rule": "{sub}_{filename_o} .png"}


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory):
    """Synthetic clips of two 'corpora' (samm: sub01-sub02, smic: sub03-sub04) written as one set."""
    yield from synthetic_flow_image_set(tmp_path_factory, {"samm": "synthetic/sub02", "smic": None},
                                        label_scheme="megc_3class", n_subjects=4, clips_per_subject=4, size=64,
                                        frames=(12, 14))


def test_htnet_layout_exactly(two_corpora):
    import cv2

    table, out, done = two_corpora
    assert done["written"] == len(table) and done["skipped"] == {}
    with open(out / HTNET_CSV, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == HTNET_COLUMNS == ("dataset", "sub", "filename_o", "label", "apex", "imagename",
                                               "sub_filename")
    codes = {"negative": "0", "positive": "1", "surprise": "2"}  # STSTNet's and HTNet's label_dict
    want = sorted((corpus, sid.split("/")[1], sid.split("/")[2], codes[lab])
                  for sid, corpus, lab in zip(table.sample_ids, table.df["corpus"], table.df["label"]))
    assert sorted(tuple(r[:4]) for r in rows[1:]) == want
    for ds, sub, clip, _code, apex, imagename, sub_filename in rows[1:]:
        assert imagename == f"{sub}_{clip}.jpg" and sub_filename == f"{sub}_{clip}" and apex.isdigit()
        img = cv2.imread(str(out / HTNET_IMAGES / f"{sub}_{clip} .png"))  # the space HTNet's code writes
        assert img is not None and img.shape == (28, 28, 3) and img.dtype == np.uint8
    names = sorted(p.name for p in (out / HTNET_IMAGES).iterdir())
    assert len(names) == len(table) and all(n.endswith(" .png") for n in names)


def test_loader_reads_the_set_with_corpora_subjects_and_labels(two_corpora):
    table, out, _ = two_corpora
    back = load_dataset("flow_images", out, label_scheme="megc_3class", **CONFIG_OPTIONS)
    assert back.report.problems == [] and back.report.missing == []
    assert set(back.df["dataset"]) == {"flow_images"}
    src = {f"flow_images/{c}/{sid.split('/', 1)[1]}": (lab, c)
           for sid, lab, c in zip(table.sample_ids, table.df["label"], table.df["corpus"])}
    assert sorted(back.sample_ids) == sorted(src)
    cols = ["sample_id", "subject", "corpus", "label", "label_code"]
    for sid, subject, corpus, lab, code in back.df[cols].itertuples(index=False):
        assert (lab, corpus) == src[sid]
        assert subject == "flow_images/" + "/".join(sid.split("/")[1:3])
        assert code == {"negative": "0", "positive": "1", "surprise": "2"}[lab]
    assert sorted(back.df["subject"].unique()) == ["flow_images/samm/sub01", "flow_images/samm/sub02",
                                                   "flow_images/smic/sub03", "flow_images/smic/sub04"]


@pytest.mark.realdata
@pytest.mark.slow
def test_casme2_clips_written_and_read_back(casme2_root, tmp_path, monkeypatch):
    """The CASME II part of the composite (negative / positive / surprise) of four subjects, written by
    mekit's writer as the benchmark writes it, read back by the flow-image path."""
    monkeypatch.setenv("MEKIT_CACHE", str(tmp_path / "cache"))
    table = load_dataset("casme2", casme2_root, label_scheme="megc_3class")
    keep = [s for s in table.sample_ids if s.split("/")[1] in ("sub01", "sub02", "sub05", "sub19")]
    part = table.subset(keep)
    out = tmp_path / "set"
    done = export_flow_image_set(part, out, layout="htnet",
                                 preprocess={"detector": "none", "size": 128, "flow": "tvl1", "workers": 1},
                                 progress=False)
    assert done["written"] == len(part) and done["skipped"] == {}
    back = load_flow_images(out, **CONFIG_OPTIONS)
    assert back.report.problems == [] and back.report.missing == []
    assert set(back.df["corpus"]) == {"casme2"}
    assert sorted(back.df["subject"].unique()) == ["flow_images/casme2/sub01", "flow_images/casme2/sub02",
                                                   "flow_images/casme2/sub05", "flow_images/casme2/sub19"]
    got = dict(zip(back.sample_ids, back.df["label"]))
    assert got == {f"flow_images/{sid}": lab for sid, lab in zip(part.sample_ids, part.df["label"])}
    assert set(got.values()) == {"negative", "positive", "surprise"}
    # the apex the sheet gives is the one written (the published sets use the annotated apex)
    apex = dict(zip(part.sample_ids, part.df["apex"]))
    with open(out / HTNET_CSV, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            assert int(r["apex"]) == apex[f"casme2/{r['sub']}/{r['filename_o']}"]
