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
                  check_frames: bool = True, exclude: Iterable[str] = (), **opts: Any) -> SampleTable:
    """Load the MEGC 2019 composite: SMIC + CASME II + SAMM labelled negative/positive/surprise.

    ``root`` may hold ``CASME2/``, ``SAMM/`` and ``SMIC/``; a ``<corpus>_root`` overrides
    its part. ``opts`` may carry per-corpus loader options as dicts, e.g.
    ``casme2={"sheet": "...", "frames_dir": "..."}``. The ``dataset`` column keeps each
    corpus's name, so per-corpus breakdowns work; subjects are already qualified by corpus.
    Emotions outside the scheme (others, CASME II sadness/fear, SAMM Other) are dropped
    and counted in ``report.dropped``.
    """
    from mekit.data.casme2 import load_casme2
    from mekit.data.samm import load_samm
    from mekit.data.smic import load_smic

    unknown = sorted(set(opts) - set(PARTS))
    if unknown:
        raise ConfigError(f"unknown option(s) for the MEGC 2019 loader: {unknown}; accepted: casme2_root, "
                          "samm_root, smic_root, check_frames, exclude, and smic/casme2/samm={loader options}")
    for k, v in opts.items():
        if not isinstance(v, dict):
            raise ConfigError(f"MEGC 2019: option {k} must be a mapping of {k} loader options, got {v!r}")
    check_frames = as_bool(check_frames, "check_frames")
    root_p = Path(root).expanduser() if root is not None else None
    given = {"smic": smic_root, "casme2": casme2_root, "samm": samm_root}
    loaders = {"smic": load_smic, "casme2": load_casme2, "samm": load_samm}
    parts = []
    for name, names in PARTS.items():
        part_root = _part_root(root_p, given[name], names, name)
        part_opts = {"check_frames": check_frames, **opts.get(name, {})}
        parts.append(loaders[name](part_root, **part_opts))
    table = parts[0].concat(*parts[1:], name="megc2019")
    table = apply_scheme(table, SCHEME)
    excluded = [s for s in dict.fromkeys(exclude)]
    if excluded:
        present = set(table.sample_ids)
        absent = [s for s in excluded if s not in present]
        if absent:
            raise ConfigError(f"MEGC 2019: exclude names sample ids not in the composite: {absent[:5]}"
                              f"{' ...' if len(absent) > 5 else ''}")
        keep = ~table.df["sample_id"].isin(excluded)
        rep = table.report.merge(LoadReport(notes=[f"excluded on request: {len(excluded)} clip(s): "
                                                   f"{', '.join(excluded[:10])}"]))
        scheme = getattr(table, "scheme", None)
        table = SampleTable(table.df.loc[keep].reset_index(drop=True), rep, "megc2019")
        table.scheme = scheme  # type: ignore[attr-defined]
    by = table.df.groupby("dataset")["sample_id"].size().to_dict()
    logger.info("MEGC 2019 composite: %d clips (%s), %d subjects", len(table),
                ", ".join(f"{k} {v}" for k, v in sorted(by.items())), table.df["subject"].nunique())
    return table
