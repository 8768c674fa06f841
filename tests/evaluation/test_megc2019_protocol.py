"""The MEGC 2019 composite as the challenge reports it: UF1 and UAR overall and per corpus (SMIC,
CASME II, SAMM), from a frames table (corpus in the ``dataset`` column) or a flow-image set (corpus in
the qualified subject ``flow_images/<corpus>/<subject>``), in metrics.json and report.md; and every
shipped flow-image config of the composite run end to end on a set mekit's writer produced."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mekit.evaluation.protocols import get_protocol
from mekit.evaluation.report import corpus_lines, corpus_results

CLASSES = ["negative", "positive", "surprise"]
N, P, S = CLASSES
REPO = Path(__file__).resolve().parents[2]

#: per corpus: (true, pred) of four clips, one subject each. Worked by hand (F1 = 2TP / (2TP + FP + FN);
#: a class absent from a corpus's ground truth is left out of its means):
#: casme2  n: TP1 FN1 -> F1 2/3, R 1/2; p: TP1 FP1 -> 2/3, 1; s: 1, 1        UF1 7/9,  UAR 5/6
#: smic    n: TP0 FP1 FN1 -> 0, 0; p: 1, 1; s: TP1 FP1 FN1 -> 1/2, 1/2     UF1 1/2,  UAR 1/2
#: samm    n: 1, 1; p: 1, 1; surprise absent                                UF1 1,    UAR 1
#: all 12  n: TP4 FP1 FN2 -> 8/11, 4/6; p: TP3 FP1 -> 6/7, 1; s: TP2 FP1 FN1 -> 2/3, 2/3
CLIPS = {"casme2": ([N, N, P, S], [N, P, P, S]), "smic": ([N, P, S, S], [S, P, S, N]), "samm": ([N, N, N, P],
                                                                                              [N, N, N, P])}
EXPECTED = {"casme2": (7 / 9, 5 / 6), "smic": (0.5, 0.5), "samm": (1.0, 1.0),
            "all": ((8 / 11 + 6 / 7 + 2 / 3) / 3, (4 / 6 + 1 + 2 / 3) / 3)}


def _subject(corpus: str, i: int) -> str:
    return {"casme2": f"sub{i + 1:02d}", "smic": f"s{i + 1:02d}", "samm": f"{i + 6:03d}"}[corpus]


def predictions(form: str, corpora=("casme2", "smic", "samm"), seeds=(0,)) -> pd.DataFrame:
    """The known-answer table as the runner writes it: ``frames`` (dataset = corpus, subject
    ``<corpus>/<sub>``), ``flow`` (an HTNet-layout set: dataset flow_images, subject
    ``flow_images/<corpus>/<sub>``) or ``loso_folders`` (STSTNet's folders: ``flow_images/<sub>``)."""
    rows = []
    for seed in seeds:
        for c in corpora:
            for i, (t, p) in enumerate(zip(*CLIPS[c])):
                sub = _subject(c, i)
                dataset, subject = {"frames": (c, f"{c}/{sub}"), "flow": ("flow_images", f"flow_images/{c}/{sub}"),
                                    "loso_folders": ("flow_images", f"flow_images/{sub}")}[form]
                # a second seed swaps one casme2 prediction, so the seeds differ
                pred = P if (seed and c == "casme2" and i == 0) else p
                rows.append({"sample_id": f"{subject}/c{i}", "subject": subject, "dataset": dataset,
                             "fold": f"loso:{subject}", "true": t, "pred": pred, "seed": seed})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("form", ["frames", "flow", "loso_folders"])
def test_per_corpus_uf1_uar_known_answer(form):
    out = corpus_results(predictions(form), CLASSES, get_protocol("megc2019"))
    meg = out["megc2019"]
    assert list(meg["per_corpus"]) == ["all", "smic", "casme2", "samm"]  # the challenge's order
    for key, (uf1, uar) in EXPECTED.items():
        v = meg["per_corpus"][key]
        assert v["uf1"] == pytest.approx(uf1) and v["uar"] == pytest.approx(uar), key
        assert v["n"] == (12 if key == "all" else 4) and v["subjects"] == (12 if key == "all" else 4)
        lo, hi = v["ci95"]["uf1"]
        assert 0 <= lo <= hi <= 1
    assert meg["complete"] and meg["absent"] == [] and meg["other"] == []
    assert set(out["per_dataset"]) == {"casme2", "smic", "samm"}
    assert out["per_dataset"]["smic"]["uf1"] == pytest.approx(0.5)
    want = {"frames": "dataset column", "flow": "flow_images/<corpus>/<subject>", "loso_folders": "subject's name"}
    assert want[form] in meg["corpus_from"]


def test_two_corpora_of_a_flow_image_set_are_not_the_composite():
    pred = predictions("flow", corpora=("casme2", "smic"))
    out = corpus_results(pred, CLASSES, get_protocol("megc2019"))
    meg = out["megc2019"]
    assert list(meg["per_corpus"]) == ["all", "smic", "casme2"] and meg["absent"] == ["samm"]
    assert not meg["complete"]
    assert meg["per_corpus"]["casme2"]["uf1"] == pytest.approx(7 / 9)
    assert meg["per_corpus"]["smic"]["uar"] == pytest.approx(0.5)
    # all 8: n TP1 FP1 FN2 -> 2/5, 1/3; p TP2 FP1 -> 4/5, 1; s TP2 FP1 FN1 -> 2/3, 2/3
    assert meg["per_corpus"]["all"]["uf1"] == pytest.approx((2 / 5 + 4 / 5 + 2 / 3) / 3)
    assert meg["per_corpus"]["all"]["uar"] == pytest.approx((1 / 3 + 1 + 2 / 3) / 3)
    text = "\n".join(corpus_lines(out))
    assert "**Not the MEGC 2019 composite**: absent: SAMM" in text
    assert "| all present | 8 | 8 | 0.622 [" in text
    assert "| CASME II | 4 | 4 | 0.778 [" in text
    assert "| SAMM | absent | - | - | - | - |" in text
    assert text.index("| all present |") < text.index("| SMIC |") < text.index("| CASME II |") < text.index("| SAMM |")


def test_complete_composite_table_and_seeds():
    pred = predictions("frames", seeds=(0, 1))
    out = corpus_results(pred, CLASSES, get_protocol("megc2019"))
    row = out["megc2019"]["per_corpus"]["casme2"]
    # seed 1 predicts p for the first casme2 clip: n TP0 FN2 -> 0, 0; p TP1 FP2 -> 1/2, 1; s 1, 1
    seed1 = (0 + 0.5 + 1) / 3
    assert row["uf1"] == pytest.approx(7 / 9)  # the headline is the first seed
    assert row["over_seeds"]["uf1"]["mean"] == pytest.approx((7 / 9 + seed1) / 2)
    assert row["over_seeds"]["uf1"]["std"] == pytest.approx(abs(7 / 9 - seed1) / 2 ** 0.5)
    text = "\n".join(corpus_lines(out))
    assert "| all (the composite) | 12 | 12 |" in text and "Not the MEGC" not in text
    assert "seeds: UF1 mean ± std" in text and "| SMIC | 4 | 4 | 0.500 [" in text


def test_other_protocols_get_the_plain_per_corpus_table():
    out = corpus_results(predictions("flow", corpora=("casme2", "smic")), CLASSES, get_protocol("loso"))
    assert "megc2019" not in out and set(out["per_dataset"]) == {"casme2", "smic"}
    assert out["per_dataset"]["casme2"]["uf1"] == pytest.approx(7 / 9)
    text = "\n".join(corpus_lines(out))
    assert "| corpus | n | UF1 | UAR | accuracy |" in text and "| smic | 4 | 0.500 | 0.500 |" in text
    # one corpus, no breakdown; and subject names are only read as corpora under megc2019
    assert corpus_results(predictions("loso_folders"), CLASSES, get_protocol("loso")) == {}


def test_corpus_spellings_of_a_csv_map_to_the_composite():
    pred = predictions("flow")
    pred["subject"] = pred["subject"].str.replace("/casme2/", "/casme_ii/").str.replace("/smic/", "/smic_hs/")
    meg = corpus_results(pred, CLASSES, get_protocol("megc2019"))["megc2019"]
    assert meg["complete"] and meg["per_corpus"]["casme2"]["uf1"] == pytest.approx(7 / 9)


# -- the shipped flow-image configs, end to end on a set mekit's writer made ----------------------------
FLOW_CONFIGS = sorted(p.name for p in (REPO / "configs").glob("megc2019_flow_images_*.yaml"))
SMALL = {"model.params.epochs": 1, "model.params.batch_size": 8, "protocol.workers": 1, "output.plots": False}


def test_every_flow_image_config_is_covered():
    assert FLOW_CONFIGS == ["megc2019_flow_images_descriptors.yaml", "megc2019_flow_images_htnet.yaml",
                            "megc2019_flow_images_ststnet.yaml"]


@pytest.fixture(scope="module")
def two_corpus_set(tmp_path_factory):
    """A small synthetic corpus split into two corpora (casme2: sub01-sub03, smic: sub04-sub06),
    written by mekit's writer in the HTNet layout."""
    from conftest import synthetic_flow_image_set

    for table, out, _ in synthetic_flow_image_set(tmp_path_factory, {"casme2": "synthetic/sub03", "smic": None},
                                                  label_scheme="megc_3class", n_subjects=6, clips_per_subject=6,
                                                  size=64, frames=(12, 14)):
        yield table, out


@pytest.mark.slow
@pytest.mark.parametrize("name", FLOW_CONFIGS)
def test_flow_image_config_end_to_end(two_corpus_set, name, tmp_path):
    from mekit.config import load_config
    from mekit.evaluation.validate import validate_config
    from mekit.experiment import run_experiment

    table, root = two_corpus_set
    over = {"data.root": str(root), **SMALL}
    if "descriptors" in name:
        over = {k: v for k, v in over.items() if not k.startswith("model.params")}
    cfg = load_config(REPO / "configs" / name, over)
    validate_config(cfg)
    res = run_experiment(cfg, tmp_path / "run", progress=False)
    m = res.metrics
    assert m["protocol"] == "megc2019" and m["n_samples"] == len(table) and m["n_subjects"] == 6
    meg = m["megc2019"]
    assert list(meg["per_corpus"]) == ["all", "smic", "casme2"] and meg["absent"] == ["samm"]
    assert meg["per_corpus"]["casme2"]["n"] + meg["per_corpus"]["smic"]["n"] == len(table)
    pred = res.predictions
    sub = pred[pred["subject"].str.startswith("flow_images/smic/")]
    from mekit.evaluation.metrics import classification_metrics

    ref = classification_metrics(sub["true"], sub["pred"], m["classes"])
    assert meg["per_corpus"]["smic"]["uf1"] == pytest.approx(ref["uf1"])
    assert meg["per_corpus"]["smic"]["uar"] == pytest.approx(ref["uar"])
    md = (tmp_path / "run" / "report.md").read_text()
    assert "**MEGC 2019 results, overall and per corpus**" in md and "| SAMM | absent |" in md
    import json

    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["megc2019"]["per_corpus"]["casme2"]["uf1"] == pytest.approx(meg["per_corpus"]["casme2"]["uf1"])
