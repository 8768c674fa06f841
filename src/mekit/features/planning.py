"""Preprocessing as a stage of its own: what each extractor needs, planned into as few pipeline
passes as possible, run once before the features are built.

Every registered extractor and input builder declares, as data, the preprocessing it needs
given its parameters: a list of :class:`Need` (the settings it forces over the run's
``preprocess`` section, and on which rows), returned by the function named in its registry
entry (``needs=``). The extractor itself reads its settings from the same function, so what is
planned and what is read cannot disagree. :func:`preprocess_needs` looks them up (a ``concat``
gives those of its parts, each part's own ``preprocess`` overrides merged in),
:func:`plan_preprocessing` merges them into pipeline passes, and :func:`preprocessed_for` runs
the passes once each (:func:`mekit.preprocess.pipeline.planned`) around the extractor call, so
each clip is decoded once however many parts read it, and the experiment reports the
preprocessing as its own ``preprocess`` stage before the features. Extractors called outside
it run the pipeline themselves, as they always did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mekit.preprocess.pipeline import PreprocessConfig, PreprocessResult

#: which rows of the table a need applies to
MEDIA = ("all", "clips", "stills")


@dataclass(frozen=True)
class Need:
    """One preprocessing an extractor reads: ``overrides`` (fields of
    :class:`~mekit.preprocess.pipeline.PreprocessConfig`) laid over the run's ``preprocess``
    section, on the rows ``media`` selects: ``'all'``, ``'clips'`` (every row but still
    images) or ``'stills'`` (``media == 'image'``)."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    media: str = "all"

    def __post_init__(self) -> None:
        if self.media not in MEDIA:
            raise ValueError(f"Need.media must be one of {MEDIA}, got {self.media!r}")


@dataclass(frozen=True)
class PlannedRun:
    """One pipeline pass of a plan: a configuration and the samples it runs on (table order)."""

    config: PreprocessConfig
    sample_ids: tuple[str, ...]


def _registered(name: str) -> tuple[Any, Any]:
    """(function, needs function or None) of a registered extractor or input builder (their
    names are distinct: a test keeps them so)."""
    from mekit.features import FEATURES, INPUTS
    from mekit.registry import resolve

    reg = FEATURES if name in FEATURES else INPUTS
    path = reg.get(name)  # ConfigError naming the known input builders when neither has it
    needs = reg.meta(name).get("needs")
    return resolve(path), None if needs is None else resolve(needs)


def with_defaults(fn: Any, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` completed with the defaults of ``fn``'s keyword parameters, so a needs function
    sees every parameter whether the config names it or not (the defaults stay in one place,
    the extractor's signature)."""
    import inspect

    out = {p.name: p.default for p in inspect.signature(fn).parameters.values()
           if p.default is not p.empty and p.name != "progress"}
    out.update(params or {})
    return out


def preprocess_needs(name: str, params: Mapping[str, Any] | None = None,
                     preprocess: Mapping[str, Any] | None = None) -> list[Need]:
    """What the extractor or input builder ``name`` with ``params`` reads from the pipeline,
    when the run's preprocess section is ``preprocess`` (a few needs depend on it, e.g. the
    stack sizes of the flow inputs).

    An extractor registered without ``needs`` (a plug-in written before they existed) declares
    nothing: no pass is planned for it and it runs the pipeline itself, as it always did."""
    fn, needs = _registered(name)
    return [] if needs is None else list(needs(with_defaults(fn, params), dict(preprocess or {})))


def _rows_of(table: Any, media: str) -> list[str]:
    df = table.df
    if media == "all" or "media" not in df.columns:
        return list(df["sample_id"])
    still = df["media"] == "image"
    return list(df.loc[still if media == "stills" else ~still, "sample_id"])


def _merged(a: PreprocessConfig, b: PreprocessConfig) -> PreprocessConfig | None:
    """One configuration that computes what ``a`` and ``b`` both need, or None.

    The merge rule: a pass over a clip aligns it once, then computes one flow entry (any set of
    pairs) and one set of sampled frames. So two needs share a pass when they agree on
    everything that enters a cache key or decides where entries live (face stage, apex, crop
    size, flow method and parameters, strain, decoding, cache); then their pairs are unioned
    (each pair's flow depends only on the three aligned crops, never on the other pairs, so a
    superset gives the same arrays) and their sampled frames are joined with that flow when at
    most one samples frames or both sample them alike (sampling, frame_size, magnify). Two
    different samplings, or different per-part overrides of any keyed setting, are two passes.
    Stack sizes and normalisation are applied when a result is read, so they never conflict;
    workers, timeout and fsync only change how a pass runs and are taken from ``a``. The
    result is checked against :func:`mekit.preprocess.pipeline.covers`, the rule by which a
    planned result answers requests, so the planner never makes a pass that would not serve.
    """
    from mekit.preprocess.pipeline import FRAME_FIELDS, PreprocessConfig, covers

    da, db = a.to_dict(), b.to_dict()
    if da["sampling"] is not None and db["sampling"] is not None and \
            any(da[k] != db[k] for k in FRAME_FIELDS):
        return None
    merged = dict(da)
    merged["pairs"] = [*da["pairs"], *(p for p in db["pairs"] if p not in da["pairs"])]
    if da["sampling"] is None and db["sampling"] is not None:
        merged.update({k: db[k] for k in FRAME_FIELDS})
    # normalise is a's: a view reads the result with its request's own normalisation and stack sizes
    merged["stack_sizes"] = [*da["stack_sizes"], *(s for s in db["stack_sizes"] if s not in da["stack_sizes"])]
    cfg = PreprocessConfig.from_dict(merged)
    return cfg if covers(cfg, a) and covers(cfg, b) else None


def plan_preprocessing(table: Any, preprocess: Mapping[str, Any] | None, name: str,
                       params: Mapping[str, Any] | None = None) -> list[PlannedRun]:
    """The pipeline passes that give extractor ``name`` with ``params`` everything it reads.

    Needs over the same rows merge when :func:`_merged` allows; a need over a subset of a
    pass's rows joins it only when that pass already covers it, because widening the pass
    would compute its extra products on rows that do not need them (e.g. flow for still
    images). Everything else is a pass of its own. A need on no row is dropped.
    """
    from mekit.preprocess.pipeline import PreprocessConfig, covers

    base = dict(preprocess or {})
    wanted = []
    for need in preprocess_needs(name, params, base):
        ids = _rows_of(table, need.media)
        if ids:
            wanted.append((ids, PreprocessConfig.from_dict({**base, **dict(need.overrides)})))
    wanted.sort(key=lambda w: -len(w[0]))  # stable: wider needs first, so narrower ones can join them
    runs: list[list[Any]] = []  # [ids, set of ids, config]
    for ids, cfg in wanted:
        rows = set(ids)
        for run in runs:
            if rows == run[1]:
                merged = _merged(run[2], cfg)
                if merged is not None:
                    run[2] = merged
                    break
            elif rows <= run[1] and covers(run[2], cfg):
                break
        else:
            runs.append([ids, rows, cfg])
    return [PlannedRun(cfg, tuple(ids)) for ids, _, cfg in runs]


@contextlib.contextmanager
def preprocessed_for(table: Any, preprocess: Mapping[str, Any] | None, name: str,
                     params: Mapping[str, Any] | None = None) -> Iterator[list[PreprocessResult]]:
    """Preprocess ``table`` for extractor ``name`` with ``params``, once, before it runs::

        with preprocessed_for(table, cfg.preprocess, "concat", params):
            feats = get_extractor("concat")(table, cfg.preprocess, **params)

    The planned passes run once each in one ``preprocess`` events stage; inside the block the
    extractor's own pipeline calls are answered from their results (see
    :func:`mekit.preprocess.pipeline.planned`), and each clip's files are fingerprinted once.
    Yields the results of the passes.
    """
    from mekit.preprocess.pipeline import planned

    runs = plan_preprocessing(table, preprocess, name, params)
    every = len(table)
    passes = [(table if len(r.sample_ids) == every else table.subset(list(r.sample_ids)), r.config) for r in runs]
    with planned(passes) as results:
        yield results


__all__ = ["MEDIA", "Need", "PlannedRun", "plan_preprocessing", "preprocess_needs", "preprocessed_for",
           "with_defaults"]
