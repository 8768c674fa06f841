import numpy as np
import pandas as pd
import pytest

from mekit.data.schema import SampleTable
from mekit.errors import ConfigError, DataError
from mekit.evaluation.metrics import classification_metrics
from mekit.evaluation.protocols import PROTOCOLS, Fold, Protocol, get_protocol


def _table(n_subj=6, per=5, datasets=("a",)):
    rows = []
    for d in datasets:
        for s in range(n_subj):
            for i in range(per):
                rows.append({"sample_id": f"{d}/s{s}/c{i}", "dataset": d, "subject": f"{d}/s{s}",
                             "clip": f"c{i}", "media": "image", "path": "/x", "emotion": "e",
                             "label": ["x", "y", "z"][i % 3], "split": "train" if s < n_subj - 2 else "test"})
    return SampleTable(pd.DataFrame(rows))


@pytest.mark.parametrize("name", ["loso", "group_kfold", "holdout", "megc2019"])
def test_subject_disjoint(name):
    t = _table(n_subj=12)
    p = get_protocol(name, **({"k": 4} if name == "group_kfold" else {}))
    folds = p.folds(t)
    subj = dict(zip(t.df.sample_id, t.df.subject))
    covered = set()
    for f in folds:
        assert not ({subj[s] for s in f.train_ids} & {subj[s] for s in f.test_ids})
        covered |= set(f.test_ids)
    if name != "holdout":
        assert covered == set(t.sample_ids)  # every sample is tested exactly once over the folds


def test_loso_one_fold_per_subject():
    t = _table(n_subj=5)
    assert len(get_protocol("loso").folds(t)) == 5


def test_lodo():
    t = _table(n_subj=3, datasets=("a", "b"))
    folds = get_protocol("lodo").folds(t)
    assert [f.test_group for f in folds] == ["a", "b"]


def test_lodo_leaves_out_the_corpora_of_a_flow_image_set():
    t = _table(n_subj=3, datasets=("flow_images",))
    df = t.df.assign(corpus=["casme2" if s.endswith(("s0", "s1")) else "samm" for s in t.df["subject"]])
    folds = get_protocol("lodo").folds(SampleTable(df))
    assert [f.test_group for f in folds] == ["casme2", "samm"]
    assert len(folds[0].test_ids) == 10 and len(folds[1].test_ids) == 5
    with pytest.raises(ConfigError, match="at least two datasets"):
        get_protocol("lodo").folds(t)


def test_random_split_is_labelled_leaky():
    p = get_protocol("random_split")
    assert p.leaky and "LEAKY" in p.describe()
    folds = p.folds(_table(n_subj=6, per=6))
    assert len(folds) == 1


def test_overlapping_fold_is_refused():
    class Bad(Protocol):
        def split(self, table, seed=0):
            ids = table.sample_ids
            return [Fold("bad", tuple(ids[:-1]), (ids[-1],))]

    with pytest.raises(DataError, match="both sides"):
        Bad("bad").folds(_table())


def test_registry_names():
    assert {"loso", "lodo", "group_kfold", "holdout", "megc2019", "random_split"} <= set(PROTOCOLS.names())


def test_metrics_known_values():
    y = ["a", "a", "a", "b", "b", "c"]
    p = ["a", "a", "b", "b", "c", "c"]
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls: a 2/3, b 1/2, c 1 ; precisions: a 1, b 1/2, c 1/2
    assert m["uar"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 * 1 / 1.5]
    assert m["uf1"] == pytest.approx(np.mean(f1))
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["c"]["support"] == 1
