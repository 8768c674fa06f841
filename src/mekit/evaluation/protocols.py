"""Registered splitters. Every fold is checked: no subject is on both sides, except in
the one protocol that exists to reproduce leaky published numbers (``random_split``),
which is labelled ``leaky`` in every output.

A protocol's constructor lists every parameter it reads (``protocol.params``), with no
``**params`` catch-all: a parameter a protocol would ignore (``k`` for ``loso``) is refused
when the config is loaded, instead of being recorded next to results it never influenced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mekit.errors import ConfigError, DataError
from mekit.registry import Registry, check_params


@dataclass(frozen=True)
class Fold:
    name: str
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    test_group: str = ""  # the held-out subject / dataset, where there is one


@dataclass
class Protocol:
    """A split of a SampleTable into folds. ``leaky`` is True only for sample-level splits."""

    name: str
    leaky: bool = False
    params: dict = field(default_factory=dict)

    def split(self, table, seed: int = 0) -> list[Fold]:  # pragma: no cover - abstract
        raise NotImplementedError

    def folds(self, table, seed: int = 0) -> list[Fold]:
        folds = self.split(table, seed)
        if not folds:
            raise DataError(f"protocol {self.name} produced no folds for {len(table)} samples")
        subj = dict(zip(table.df["sample_id"], table.df["subject"]))
        for f in folds:
            overlap = {subj[s] for s in f.train_ids} & {subj[s] for s in f.test_ids}
            if overlap and not self.leaky:
                raise DataError(f"protocol {self.name}, fold {f.name}: subjects {sorted(overlap)[:5]} "
                                "are on both sides of the split", expected="disjoint subjects")
            if set(f.train_ids) & set(f.test_ids):
                raise DataError(f"protocol {self.name}, fold {f.name}: a sample is in train and test")
        return folds

    def describe(self) -> str:
        return self.name + (" (LEAKY: sample-level split, subjects shared across train and test)"
                            if self.leaky else "")


PROTOCOLS: Registry[type[Protocol]] = Registry("protocol")


def _ids(df, mask) -> tuple[str, ...]:
    return tuple(df.loc[mask, "sample_id"].tolist())


@PROTOCOLS.register("loso", help="leave-one-subject-out")
class LOSO(Protocol):
    def __init__(self) -> None:
        super().__init__("loso")

    def split(self, table, seed=0):
        df = table.df
        return [Fold(f"loso:{s}", _ids(df, df["subject"] != s), _ids(df, df["subject"] == s), s)
                for s in sorted(df["subject"].unique())]


@PROTOCOLS.register("lodo", help="leave-one-dataset-out")
class LODO(Protocol):
    def __init__(self) -> None:
        super().__init__("lodo")

    def split(self, table, seed=0):
        df = table.df
        col = "dataset"
        # a flow-image set is one dataset whose rows keep their source corpus in the extra
        # column ``corpus`` (mekit.data.flow_images): its corpora are the datasets left out
        if df["dataset"].nunique() < 2 and "corpus" in df.columns and df["corpus"].nunique() >= 2:
            col = "corpus"
        if df[col].nunique() < 2:
            raise ConfigError("protocol lodo needs at least two datasets in the table (column 'dataset', or "
                              "'corpus' for a flow-image set)")
        return [Fold(f"lodo:{d}", _ids(df, df[col] != d), _ids(df, df[col] == d), d)
                for d in sorted(df[col].astype(str).unique())]


@PROTOCOLS.register("group_kfold", help="subject-grouped k-fold (k=10 by default), stratified where possible")
class GroupKFold(Protocol):
    def __init__(self, k: int = 10) -> None:
        super().__init__("group_kfold", params={"k": k})
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ConfigError(f"protocol.params.k: group_kfold needs an integer of at least 2, got {k!r}")
        self.k = int(k)

    def split(self, table, seed=0):
        from sklearn.model_selection import StratifiedGroupKFold

        df = table.df
        n_groups = df["subject"].nunique()
        if n_groups < self.k:
            raise DataError(f"group_kfold: {n_groups} subjects cannot make {self.k} folds",
                            expected=f"at least {self.k} subjects")
        y = df["label"].astype(str).to_numpy()
        splitter = StratifiedGroupKFold(n_splits=self.k, shuffle=True, random_state=seed)
        out = []
        for i, (tr, te) in enumerate(splitter.split(np.zeros(len(df)), y, df["subject"].to_numpy())):
            out.append(Fold(f"fold{i}", tuple(df["sample_id"].iloc[tr]), tuple(df["sample_id"].iloc[te])))
        return out


@PROTOCOLS.register("holdout", help="the fixed train/test split the folders define (column 'split')")
class Holdout(Protocol):
    def __init__(self, train: str = "train", test: str = "test") -> None:
        super().__init__("holdout", params={"train": train, "test": test})
        self.train, self.test = train, test

    def split(self, table, seed=0):
        df = table.df
        sp = df["split"].fillna("").astype(str)
        top = sp.str.split("/").str[0]
        tr, te = top == self.train, top == self.test
        if not tr.any() or not te.any():
            raise DataError(f"holdout: the table has no '{self.train}'/'{self.test}' split "
                            f"(splits present: {sorted(set(sp))})")
        return [Fold("holdout", _ids(df, tr), _ids(df, te))]


@PROTOCOLS.register("megc2019", help="MEGC 2019 composite: LOSO over all corpora, results overall and per corpus")
class MEGC2019(LOSO):
    def __init__(self) -> None:
        Protocol.__init__(self, "megc2019")


@PROTOCOLS.register("nested", help="nested selection: an outer protocol (loso by default); in each outer fold an inner "
                   "subject-grouped CV on its training subjects chooses among the config's search recipes")
class Nested(Protocol):
    """The outer folds of ``outer`` (any subject-independent protocol); what happens inside a fold
    (the inner CV over ``search``, the refit of the winner) is done by the task, see
    :mod:`mekit.tasks.recipes`. ``inner_k``: inner subject-grouped folds (at most the number of
    training subjects of the fold)."""

    def __init__(self, outer: str = "loso", outer_params: dict | None = None, inner_k: int = 5) -> None:
        if outer in ("nested", "random_split"):
            raise ConfigError(f"protocol.params.outer: {outer!r}; expected a subject-independent protocol such as "
                              "loso, group_kfold, lodo, megc2019 or holdout")
        if outer not in PROTOCOLS:
            raise ConfigError(f"protocol.params.outer: unknown protocol {outer!r}; expected one of "
                              f"{[n for n in PROTOCOLS.names() if n not in ('nested', 'random_split')]}")
        if outer_params is not None and not isinstance(outer_params, dict):
            raise ConfigError(f"protocol.params.outer_params: {outer_params!r}; expected a mapping")
        if isinstance(inner_k, bool) or not isinstance(inner_k, int) or inner_k < 2:
            raise ConfigError(f"protocol.params.inner_k: {inner_k!r}; expected an integer of at least 2")
        check_params(PROTOCOLS.get(outer), outer_params or {}, "protocol.params.outer_params", f"protocol {outer!r}")
        self.outer = PROTOCOLS.get(outer)(**(outer_params or {}))
        self.inner_k = int(inner_k)
        super().__init__("nested", params={"outer": outer, "outer_params": dict(outer_params or {}),
                                           "inner_k": self.inner_k})

    def split(self, table, seed=0):
        return self.outer.split(table, seed)

    def describe(self) -> str:
        return (f"nested: outer {self.outer.describe()}; in each outer fold an inner {self.inner_k}-fold "
                "subject-grouped CV on its training subjects chose the recipe")


@PROTOCOLS.register("random_split", help="LEAKY sample-level random split, only to compare with published repos")
class RandomSplit(Protocol):
    def __init__(self, test_size: float = 0.25, stratify: bool = True) -> None:
        super().__init__("random_split", leaky=True, params={"test_size": test_size, "stratify": stratify})
        if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
            raise ConfigError(f"protocol.params.test_size: random_split needs a fraction between 0 and 1, "
                              f"got {test_size!r}")
        self.test_size, self.stratify = float(test_size), bool(stratify)

    def split(self, table, seed=0):
        from sklearn.model_selection import train_test_split

        df = table.df
        ids = df["sample_id"].to_numpy()
        tr, te = train_test_split(ids, test_size=self.test_size, random_state=seed,
                                  stratify=df["label"].astype(str) if self.stratify else None)
        return [Fold("random", tuple(tr), tuple(te))]


def check_protocol_params(name: str, params: dict | None, where: str = "protocol.params") -> None:
    """Refuse a parameter protocol ``name`` does not read, or a value it would refuse,
    naming the key (what :func:`get_protocol` would otherwise fail on, or silently keep).
    Constructors only store and check their parameters, so one is built to check the values."""
    check_params(PROTOCOLS.get(name), params or {}, where, f"protocol {name!r}")
    PROTOCOLS.get(name)(**(params or {}))


def get_protocol(name: str, **params) -> Protocol:
    check_params(PROTOCOLS.get(name), params, "protocol.params", f"protocol {name!r}")
    return PROTOCOLS.get(name)(**params)

