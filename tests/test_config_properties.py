"""Property-based tests of config loading: any mapping of overrides, any YAML text, either gives
a config or one ConfigError line; never another exception."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mekit.config import load_config  # noqa: E402
from mekit.errors import MekitError  # noqa: E402

KEYS = ["name", "seed", "task", "data.loader", "data.root", "data.label_scheme", "data.options.n_subjects",
        "data.options.colour", "preprocess.size", "preprocess.flow", "preprocess.detector",
        "features.name", "features.params.grid", "features.params.bins", "model.name", "model.params.C",
        "model.params.grid", "model.params.epochs", "imbalance.class_weight", "imbalance.sampler",
        "protocol.name", "protocol.params.k", "protocol.seeds", "protocol.workers", "output.plots",
        "intensity.source", "bogus", "model.bogus", "protocol.params.bogus"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["loso", "logreg", "hoof", "ststnet", "synthetic",
                                                           "balanced", "smote", "five", "maybe", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_any_overrides_give_a_config_or_one_config_error(overrides):
    from mekit.evaluation.validate import validate_config

    try:
        validate_config(load_config(None, overrides))
    except MekitError as e:
        assert str(e) and "\n" not in str(e).strip()


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_yaml_text_gives_a_config_or_one_config_error(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("cfg") / "c.yaml"
    p.write_text(text, encoding="utf-8")
    try:
        load_config(p)
    except MekitError as e:
        assert str(e) and "\n" not in str(e).strip()
