"""The MEGC 2019 composite database (See et al., 2019, IEEE FG, "MEGC 2019 - the second facial
micro-expressions grand challenge"): SMIC-HS + CASME II + SAMM relabelled negative /
positive / surprise and evaluated leave-one-subject-out over the 68 subjects.

The official composite has 442 clips: CASME II 145 (negative 88, positive 32, surprise
25), SAMM 133 (92 / 26 / 15), SMIC-HS 164 (70 / 51 / 43). Built from the coding sheets
with the ``megc_3class`` scheme (:mod:`mekit.data.labels`), this loader gives SAMM 133
and SMIC 164 exactly, and CASME II 147 (negative 90 = disgust 63 + repression 27,
positive 32, surprise 25; 24 subjects): 444 clips in all, 68 subjects. The two extra
CASME II negatives are clips the challenge organisers left out of their list; the
challenge did not publish which, so mekit keeps every clip the stated mapping admits
rather than guess. Pass ``exclude=[sample ids]`` to drop clips (e.g. to match a paper's
list); the exclusion is written to the report. With frames checked on the CASME II copy
users commonly hold, clips without frames are reported missing as usual.

A composite lacking a whole corpus (its folder absent, or not one of its clips loadable, say
SAMM's sheet present but its frames not) is not MEGC 2019: results on it cannot be compared
with the challenge's. So that stops with a DataError naming the corpus and its folder, unless
``allow_partial=True`` asks for it explicitly; the table is then named ``megc2019-partial``
and its report records the corpora used (``report.corpora``: corpus -> clips) and those left
out with the reason (``report.corpora_absent``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mekit.data._sheets import as_bool
from mekit.data.labels import apply_scheme
from mekit.data.schema import LoadReport, SampleTable
from mekit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SCHEME = "megc_3class"
#: The corpora of the composite, in the order the challenge lists them, with the folder names
#: looked for under a common root.
PARTS: dict[str, tuple[str, ...]] = {
    "smic": ("SMIC", "smic", "SMIC-HS", "SMIC_HS"),
    "casme2": ("CASME2", "CASME II", "CASMEII", "casme2", "CASME_II"),
    "samm": ("SAMM", "samm"),
}


def _part_root(root: Path | None, given: str | Path | None, names: tuple[str, ...], what: str) -> Path:
    if given is not None:
        return Path(given).expanduser()
    if root is None:
        raise DataError(f"MEGC 2019: no folder for {what}; give root (holding {names[0]}/) "
                        f"or {what}_root=PATH")
    for n in names:
        if (root / n).is_dir():
            return root / n
    raise DataError(f"MEGC 2019: no {what} folder in {root}", expected=f"one of {list(names)} under it, "
                    f"or {what}_root=PATH")


def load_megc2019(root: str | Path | None = None, *, casme2_root: str | Path | None = None,
                  samm_root: str | Path | None = None, smic_root: str | Path | None = None,
                  check_frames: bool = True, exclude: Iterable[str] = (), allow_partial: bool = False,
                  **opts: Any) -> SampleTable:
    """Load the MEGC 2019 composite: SMIC + CASME II + SAMM labelled negative/positive/surprise.

    ``root`` may hold ``CASME2/``, ``SAMM/`` and ``SMIC/``; a ``<corpus>_root`` overrides
    its part. ``opts`` may carry per-corpus loader options as dicts, e.g.
    ``casme2={"sheet": "...", "frames_dir": "..."}``. The ``dataset`` column keeps each
    corpus's name, so per-corpus breakdowns work; subjects are already qualified by corpus.
    Emotions outside the scheme (others, CASME II sadness/fear, SAMM Other) are dropped
    and counted in ``report.dropped``. A corpus that cannot be loaded at all, or gives no
    clip, raises DataError unless ``allow_partial`` (see the module docstring).
    """
    from mekit.data.casme2 import load_casme2
    from mekit.data.samm import load_samm
    from mekit.data.smic import load_smic

    unknown = sorted(set(opts) - set(PARTS))
    if unknown:
        raise ConfigError(f"unknown option(s) for the MEGC 2019 loader: {unknown}; accepted: casme2_root, "
                          "samm_root, smic_root, check_frames, exclude, allow_partial, and "
                          "smic/casme2/samm={loader options}")
    for k, v in opts.items():
        if not isinstance(v, dict):
            raise ConfigError(f"MEGC 2019: option {k} must be a mapping of {k} loader options, got {v!r}")
    check_frames = as_bool(check_frames, "check_frames")
    allow_partial = as_bool(allow_partial, "allow_partial")
    root_p = Path(root).expanduser() if root is not None else None
    given = {"smic": smic_root, "casme2": casme2_root, "samm": samm_root}
    loaders = {"smic": load_smic, "casme2": load_casme2, "samm": load_samm}
    hint = "set allow_partial: true to run the composite without it"
    parts: list[SampleTable] = []
    absent: dict[str, str] = {}
    for name, names in PARTS.items():
        part_root: Path | None = None
        try:
            part_root = _part_root(root_p, given[name], names, name)
            part = loaders[name](part_root, **{"check_frames": check_frames, **opts.get(name, {})})
        except DataError as e:
            if not allow_partial:
                raise DataError(f"{e} ({hint})") from None
            absent[name] = str(e)
            continue
        n_in = int(part.df["dataset"].eq(name).sum())
        if n_in == 0:
            why = (f"MEGC 2019: no {name} clip could be loaded from {part_root} "
                   f"({len(part.report.missing)} clip(s) without frames, {len(part.report.problems)} problem(s))")
            if not allow_partial:
                raise DataError(f"{why}; expected the {name} frames under that folder, or {name}_root=PATH ({hint})")
            absent[name] = why
        parts.append(part)
    if not parts:
        raise DataError("MEGC 2019: none of smic, casme2, samm could be loaded: "
                        + "; ".join(f"{k}: {v}" for k, v in absent.items()))
    table = parts[0].concat(*parts[1:], name="megc2019")
    table = apply_scheme(table, SCHEME)
    scheme = getattr(table, "scheme", None)
    # A corpus whose clips the scheme drops entirely adds nothing either.
    for c in PARTS:
        if c not in absent and not table.df["dataset"].eq(c).any():
            why = f"MEGC 2019: no {c} clip has a label of scheme {SCHEME}"
            if not allow_partial:
                raise DataError(f"{why} ({hint})")
            absent[c] = why
    used = {c: int(table.df["dataset"].eq(c).sum()) for c in PARTS if c not in absent}
    tname = "megc2019-partial" if absent else "megc2019"
    notes = []
    if absent:
        notes.append(f"PARTIAL MEGC 2019 composite (allow_partial): corpora used "
                     f"{', '.join(f'{c} {n}' for c, n in used.items())}; left out "
                     f"{', '.join(absent)}: results are not comparable with the challenge's")
        logger.warning("%s", notes[0])
    table = SampleTable(table.df, table.report.merge(LoadReport(corpora=used, corpora_absent=absent,
                                                                notes=notes)), tname, scheme)
    excluded = [s for s in dict.fromkeys(exclude)]
    if excluded:
        present = set(table.sample_ids)
        not_in = [s for s in excluded if s not in present]
        if not_in:
            raise ConfigError(f"MEGC 2019: exclude names sample ids not in the composite: {not_in[:5]}"
                              f"{' ...' if len(not_in) > 5 else ''}")
        keep = ~table.df["sample_id"].isin(excluded)
        dropped_by = table.df.loc[~keep, "dataset"].value_counts().to_dict()
        rep = table.report.merge(LoadReport(notes=[f"excluded on request: {len(excluded)} clip(s): "
                                                   f"{', '.join(excluded[:10])}"]))
        rep.corpora = {c: n - int(dropped_by.get(c, 0)) for c, n in rep.corpora.items()}
        table = SampleTable(table.df.loc[keep].reset_index(drop=True), rep, tname, scheme)
    by = table.df.groupby("dataset")["sample_id"].size().to_dict()
    logger.info("MEGC 2019 composite%s: %d clips (%s), %d subjects", " (partial)" if absent else "",
                len(table), ", ".join(f"{k} {v}" for k, v in sorted(by.items())), table.df["subject"].nunique())
    return table
