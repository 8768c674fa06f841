"""The classical pipelines live in mekit.models.classical; mekit.classical is an alias of that
module, so old imports and bundles whose skops schema names the old path keep working. The
model registry is lazy: listing models, reading their contract and running a classical
pipeline import no torch."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest


def test_the_old_module_is_the_new_module():
    import mekit.classical as old
    import mekit.models.classical as new

    assert old is new
    from mekit.classical import CLASSIFIERS, ClassicalModel, FlamlClassifier, SoftmaxSVC, make_classical

    assert (CLASSIFIERS, ClassicalModel, FlamlClassifier, SoftmaxSVC, make_classical) == (
        new.CLASSIFIERS, new.ClassicalModel, new.FlamlClassifier, new.SoftmaxSVC, new.make_classical)
    assert SoftmaxSVC.__module__ == "mekit.models.classical"


def test_a_change_made_through_the_old_path_reaches_the_new_one(monkeypatch):
    import mekit.classical
    import mekit.models.classical

    monkeypatch.setattr(mekit.classical, "_SET_ELSEWHERE", {"C": "patched"})
    assert mekit.models.classical._SET_ELSEWHERE == {"C": "patched"}


# -- bundles written before and after the move ------------------------------------------------
def _svm_bundle(tmp_path: Path):
    from mekit.config import load_config
    from mekit.engine.bundle import save_bundle
    from mekit.models.classical import ClassicalModel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    y = np.array(["a", "b"] * 20)
    X[y == "b"] += 1.0
    model = ClassicalModel("svm", grid={}).fit(X, y, np.repeat(np.arange(4), 10))
    path = save_bundle(tmp_path / "svm.mekit", model, load_config(overrides={"model.name": "svm"}), ["a", "b"])
    return path, model, X


def _rename_types(path: Path, old: str, new: str) -> int:
    """Rewrite the module of every ``old`` type in the bundle's skops schema to ``new``; how many."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(io.BytesIO(members["model.skops"])) as z:
        skops = {n: z.read(n) for n in z.namelist()}
    count = 0

    def walk(node):
        nonlocal count
        if isinstance(node, dict):
            if node.get("__module__") == old:
                node["__module__"] = new
                count += 1
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    schema = json.loads(skops["schema.json"])
    walk(schema)
    skops["schema.json"] = json.dumps(schema).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, data in skops.items():
            z.writestr(n, data)
    members["model.skops"] = buf.getvalue()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, data in members.items():
            z.writestr(n, data)
    return count


def test_new_bundles_name_the_new_module(tmp_path):
    path, _, _ = _svm_bundle(tmp_path)
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(io.BytesIO(z.read("model.skops"))) as s:
        schema = s.read("schema.json").decode()
    assert '"mekit.models.classical"' in schema and '"mekit.classical"' not in schema


def test_a_bundle_naming_the_old_module_still_loads(tmp_path):
    from mekit.engine.bundle import load_bundle
    from mekit.models.classical import SoftmaxSVC

    path, model, X = _svm_bundle(tmp_path)
    assert _rename_types(path, "mekit.models.classical", "mekit.classical") == 1
    b = load_bundle(path)
    assert isinstance(b.model.model_.named_steps["clf"], SoftmaxSVC)
    np.testing.assert_allclose(b.model.predict_proba(X), model.predict_proba(X), atol=1e-12)


def test_a_bundle_naming_another_module_is_refused(tmp_path):
    from mekit.engine.bundle import load_bundle
    from mekit.errors import DataError

    path, _, _ = _svm_bundle(tmp_path)
    _rename_types(path, "mekit.models.classical", "mekit.models")
    with pytest.raises(DataError, match="allow-list"):
        load_bundle(path)


# -- no torch for a classical run ------------------------------------------------------------
@pytest.mark.slow
def test_listing_models_and_a_classical_run_import_no_torch():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import mekit.models, mekit.engine.factory
        from mekit.config import load_config
        from mekit.models import MODELS, get_data_config

        names = MODELS.names()
        assert "ststnet" in names and MODELS.meta("ststnet")["input"] == "flow"
        assert get_data_config("resnet18_flow")["mean"] == (0.485, 0.456, 0.406)
        cfg = load_config(overrides={"model.name": "logreg", "model.params": {"grid": {}}})
        assert not mekit.engine.factory.is_neural("logreg")
        model = mekit.engine.factory.make_model(cfg, seed=0)
        rng = np.random.default_rng(0)
        model.fit(rng.normal(size=(12, 3)), np.array(["a", "b"] * 6), np.repeat(np.arange(3), 4))
        import mekit.classical
        assert "torch" not in sys.modules, "torch was imported"
        MODELS.get("ststnet")
        assert "torch" in sys.modules
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def test_every_declared_family_agrees_with_its_own_registration():
    from mekit.models import MODELS

    declared = {n: MODELS.meta(n) for n in MODELS.names()}
    for name in MODELS.names():
        ctor = MODELS.get(name)  # imports the family; its decorator refuses metadata that differs
        assert callable(ctor) and MODELS.meta(name) == declared[name]


def test_a_family_whose_metadata_differs_from_its_declaration_is_refused():
    from mekit.models import MODELS, ModelRegistry

    reg = ModelRegistry("model")
    reg.add("tiny", f"{__name__}:tiny", **MODELS.meta("ststnet"))

    def tiny(num_classes: int = 3):
        return None

    tiny.__module__ = __name__
    assert reg.settle("tiny", tiny, MODELS.meta("ststnet")) and reg.get("tiny") is tiny
    reg2 = ModelRegistry("model")
    reg2.add("tiny", f"{__name__}:tiny", **MODELS.meta("ststnet"))
    with pytest.raises(ValueError, match="differs from its declaration"):
        reg2.settle("tiny", tiny, {**MODELS.meta("ststnet"), "help": "changed"})
