"""A bundle is untrusted input: hostile skops payloads, zip bombs, damaged archives, bad meta.json
and runtime settings that would choose where mekit writes are all refused with one line."""

from __future__ import annotations

import io
import itertools
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mekit.config import load_config
from mekit.engine.bundle import LIMITS, SKOPS_LIMITS, SKOPS_TYPES, load_bundle, save_bundle
from mekit.errors import DataError

SYNTH = {"n_subjects": 4, "clips_per_subject": 3, "size": 64}
PRE = {"detector": "none", "size": 64, "landmarks": False, "workers": 1}


def _cfg(**over):
    base = {"name": "tiny", "data.loader": "synthetic", "data.options": SYNTH, "preprocess": PRE,
            "features.name": "hoof", "features.params": {"grid": 3, "bins": 8}, "model.name": "logreg",
            "model.params": {"grid": {"C": [0.1, 1.0]}}}
    return load_config(overrides={**base, **over})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A classical bundle of the tiny synthetic corpus, and one image to predict."""
    from mekit.engine.predict import fit_full

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEKIT_CACHE", str(tmp_path_factory.getbasetemp() / "mekit-cache"))
        fit = fit_full(_cfg(), progress=False)
        root = tmp_path_factory.mktemp("secure")
        path = save_bundle(root / "c.mekit", fit.model, _cfg(), fit.classes, fit.meta)
    image = root / "face.jpg"
    image.write_bytes(next(Path(fit.table.df["path"][0]).glob("*.jpg")).read_bytes())
    return path, image


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, data in members.items():
            z.writestr(n, data)
    return path


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert len(text.splitlines()) == 1, text
    return text


def _cli_fails(args: list, monkeypatch, capsys) -> str:
    """stderr of a mekit command that must fail with one ``error:`` line and exit code 2."""
    from conftest import cli_error_line

    return cli_error_line(args, monkeypatch, capsys)


# -- the allow-list covers every pipeline mekit fits ----------------------------------------
def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 12)).astype(np.float32)
    y = np.array(["a"] * 30 + ["b"] * 18 + ["c"] * 12)
    X[y == "b"] += 1.0
    X[y == "c"] -= 1.0
    return X, y, np.repeat(np.arange(6), 10)


def _round_trip(tmp_path: Path, model, name: str, X, task: str = "classification") -> None:
    """Save ``model`` as a bundle, load it, and check that it predicts the same."""
    extra = {"task": task} if task != "classification" else None
    classes = [str(c) for c in model.classes_]
    path = save_bundle(tmp_path / "m.mekit", model, load_config(overrides={"model.name": name}), classes, extra)
    b = load_bundle(path)
    if task == "classification":
        np.testing.assert_allclose(b.model.predict_proba(X), model.predict_proba(X), atol=1e-12)
    else:
        np.testing.assert_allclose(b.model.model_.predict(X), model.model_.predict(X), atol=1e-12)


@pytest.mark.parametrize("classifier", ["logreg", "svm", "random_forest", "gbm"])
@pytest.mark.slow
def test_every_classical_pipeline_of_mekit_loads(classifier, tmp_path):
    from mekit.models.classical import ClassicalModel
    from mekit.imbalance import SAMPLERS

    X, y, g = _data()
    fixed = {"n_estimators": 10} if classifier in ("random_forest", "gbm") else {}
    grid: dict = {}  # the search does not change which types the fitted pipeline holds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pca, sampler, cw in [*itertools.product([None, 5], [None, *SAMPLERS.names()], ["balanced"]),
                                 (None, None, None)]:
            m = ClassicalModel(classifier, class_weight=cw, pca=pca, sampler=sampler, inner_folds=3, grid=grid,
                               **fixed).fit(X, y, g)
            _round_trip(tmp_path, m, classifier, X)


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["lgbm", "rf", "extra_tree", "lrl1", "lrl2"])
def test_flaml_pipelines_are_bundled_as_the_learner_flaml_chose(learner, tmp_path):
    from mekit.models.classical import ClassicalModel

    X, y, g = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pca, sampler in [(None, None), (5, "smote")]:
            m = ClassicalModel("flaml", pca=pca, sampler=sampler, time_budget=1, estimator_list=[learner]).fit(X, y, g)
            _round_trip(tmp_path, m, "flaml", X)  # the same probabilities as FLAML's AutoML


def test_flaml_learners_a_bundle_cannot_hold_are_refused_before_training(tmp_path):
    from mekit.engine.predict import train_bundle
    from mekit.errors import ConfigError

    cfg = _cfg(**{"model.name": "flaml", "model.params": {"estimator_list": ["lgbm", "sgd"]}})
    with pytest.raises(ConfigError, match="estimator_list.*sgd"):
        train_bundle(cfg, tmp_path / "f.mekit", progress=False)


@pytest.mark.parametrize("regressor", ["ridge", "svr", "lightgbm", "position_prior"])
def test_every_intensity_regressor_loads(regressor, tmp_path):
    from mekit.intensity.models import FrameRegressor

    X, _, g = _data()
    rng = np.random.default_rng(1)
    X = X if regressor != "position_prior" else rng.uniform(size=(60, 1))
    r = FrameRegressor(regressor, {"n_estimators": 10} if regressor == "lightgbm" else {}).fit(X, rng.uniform(size=60), g)
    _round_trip(tmp_path, r, regressor, X, task="intensity")


def test_the_allow_list_names_nothing_that_runs_code():
    banned_modules = ("builtins", "os", "posix", "subprocess", "importlib", "functools", "operator", "sys",
                      "shutil", "pickle", "runpy", "code", "ctypes", "io", "pathlib")
    for name, loaders in SKOPS_TYPES.items():
        module, cls = name.rsplit(".", 1)
        assert module.split(".")[0] not in banned_modules or cls in ("dict", "list", "tuple", "str"), name
        assert not any(w in cls.lower() for w in ("eval", "exec", "getattr", "attrgetter", "import", "system",
                                                  "popen", "partial", "save", "load", "call"))
        assert module.split(".")[0] in ("builtins", "collections", "numpy", "scipy", "sklearn", "imblearn",
                                        "lightgbm", "mekit"), name
        assert "FunctionNode" not in loaders or name.endswith("._aliases.asarray"), name
        assert not {"ConstructorFromReduceNode", "MethodNode", "OperatorFuncNode", "PartialNode",
                    "RandomGeneratorNode", "CachedNode"} & set(loaders), name


# -- hostile skops payloads -----------------------------------------------------------------
def _json_node(value) -> dict:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(value),
            "is_json": True}


def _tuple_node(*values) -> dict:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": [_json_node(v) for v in values]}


def _call(module: str, name: str, *args) -> dict:
    """skops' ConstructorFromReduceNode: ``module.name(*args)`` on load."""
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": _tuple_node(*args)}


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payloads(marker: Path) -> dict[str, dict]:
    """Schema nodes that, loaded, would create ``marker`` (or call something as bad)."""
    m = str(marker)
    pickled = marker.with_name("evil.pkl")
    if pickled.parent.is_dir():
        pickled.write_bytes(pickle.dumps(_Evil(m)))
    fn = lambda module, name: {"__class__": name, "__module__": module, "__loader__": "FunctionNode"}  # noqa: E731
    return {
        "builtins.eval": _call("builtins", "eval", f"open({m!r}, 'w').close()"),
        "builtins.exec": _call("builtins", "exec", f"open({m!r}, 'w').close()"),
        "os.system": _call("os", "system", f"touch {m}"),
        "subprocess.Popen": _call("subprocess", "Popen", ["touch", m]),
        "numpy.save": _call("numpy", "save", m, [1, 2, 3]),
        "numpy.savetxt": _call("numpy", "savetxt", m, [1, 2, 3]),
        "numpy.load": _call("numpy", "load", str(pickled), None, True),
        "importlib.import_module": _call("importlib", "import_module", "antigravity"),
        "getattr chain": _call("builtins", "getattr", "os", "system"),
        "functools.partial": {"__class__": "partial", "__module__": "functools", "__loader__": "PartialNode",
                              "content": {"func": fn("os", "system"), "args": _tuple_node(f"touch {m}"),
                                          "kwds": _json_node({}), "namespace": _json_node({})}},
        "operator.attrgetter": {"__class__": "attrgetter", "__module__": "operator", "__loader__": "OperatorFuncNode",
                                "attrs": _tuple_node("system")},
        "FunctionNode os.system": fn("os", "system"),
        "TypeNode builtins.eval": {"__class__": "eval", "__module__": "builtins", "__loader__": "TypeNode"},
        "an allowed type through another loader": _call("numpy", "ndarray", [2]),
        "an array type that is a function": {"__class__": "save", "__module__": "numpy", "__loader__": "NdArrayNode",
                                             "type": "json", "content": [], "shape": _tuple_node(0)},
        "a node without a loader": {"__class__": "system", "__module__": "os"},
    }


def _hostile_skops(clean: bytes, node: dict) -> bytes:
    """``clean`` (a skops file) with ``node`` set as an attribute of its first estimator."""
    with zipfile.ZipFile(io.BytesIO(clean)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    steps = schema["content"]["content"]["steps"]["content"]
    attrs = steps[0]["content"][1]["content"]  # the DictNode of the scaler's attributes
    attrs["content"]["hostile"] = node
    attrs["key_types"]["content"].append({"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"})
    files["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def clean_skops(trained) -> bytes:
    return _members(trained[0])["model.skops"]


HOSTILE = list(_payloads(Path("/nonexistent/x")))
LIVE = ["builtins.eval", "builtins.exec", "os.system", "subprocess.Popen", "numpy.save", "numpy.savetxt",
        "numpy.load"]


@pytest.mark.parametrize("name", LIVE)
def test_the_hostile_payloads_are_live(name, clean_skops, tmp_path):
    """skops itself runs them once told to trust what they name: the refusals below are real."""
    import skops.io as sio

    marker = tmp_path / "ran"
    data = _hostile_skops(clean_skops, _payloads(marker)[name])
    try:
        sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    except Exception:  # noqa: BLE001 - the object built afterwards may not be a valid estimator
        pass
    if name == "subprocess.Popen":
        import time

        for _ in range(50):
            if marker.exists():
                break
            time.sleep(0.05)
    assert marker.exists() or marker.with_suffix(".npy").exists()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_skops_payloads_never_run(name, trained, clean_skops, tmp_path):
    path, _ = trained
    marker = tmp_path / "ran"
    members = _members(path)
    members["model.skops"] = _hostile_skops(clean_skops, _payloads(marker)[name])
    bad = _write(tmp_path / "hostile.mekit", members)
    with pytest.raises(DataError, match="not a valid mekit bundle: model.skops") as e:
        load_bundle(bad)
    _one_line(e)
    assert not marker.exists() and not marker.with_suffix(".npy").exists()


def test_a_hostile_payload_is_refused_by_mekit_predict_before_the_input_is_read(trained, tmp_path, monkeypatch,
                                                                                   capsys):
    path, _ = trained
    marker = tmp_path / "ran"
    members = _members(path)
    members["model.skops"] = _hostile_skops(members["model.skops"], _payloads(marker)["builtins.eval"])
    bad = _write(tmp_path / "hostile.mekit", members)
    err = _cli_fails(["predict", bad, tmp_path / "no-such-input.jpg"], monkeypatch, capsys)
    assert "allow-list" in err and not marker.exists()


def test_an_old_skops_protocol_is_refused(trained, clean_skops, tmp_path):
    path, _ = trained
    with zipfile.ZipFile(io.BytesIO(clean_skops)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    schema["protocol"] = 0  # old protocols read with older node classes
    files["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    members = {**_members(path), "model.skops": out.getvalue()}
    with pytest.raises(DataError, match="protocol 0"):
        load_bundle(_write(tmp_path / "old.mekit", members))


def test_a_well_typed_but_malformed_tree_is_refused(tmp_path):
    """A forest whose child indices point outside the tree would make scikit-learn read out of bounds."""
    from mekit.models.classical import ClassicalModel

    X, y, g = _data()
    m = ClassicalModel("random_forest", n_estimators=3).fit(X, y, g)
    path = save_bundle(tmp_path / "rf.mekit", m, load_config(overrides={"model.name": "random_forest"}),
                       list(m.classes_))
    members = _members(path)
    with zipfile.ZipFile(io.BytesIO(members["model.skops"])) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    stack, trees = [schema], []
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            if n.get("__loader__") == "TreeNode":
                trees.append(n)
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    nodes_file = trees[0]["content"]["content"]["nodes"]["file"]
    arr = np.load(io.BytesIO(files[nodes_file]))
    arr["left_child"][0] = 10 ** 6
    buf = io.BytesIO()
    np.save(buf, arr)
    files[nodes_file] = buf.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    members["model.skops"] = out.getvalue()
    with pytest.raises(DataError, match="tree is not well formed"):
        load_bundle(_write(tmp_path / "bad_tree.mekit", members))


# -- archive structure ----------------------------------------------------------------------
def test_unexpected_duplicate_and_extra_members_are_refused(trained, tmp_path):
    path, _ = trained
    members = _members(path)
    cases = {
        "extra": ({**members, "notes.txt": b"hi"}, "unexpected member 'notes.txt'"),
        "traversal": ({**members, "../../evil.py": b"x"}, "unexpected member"),
        "both payloads": ({**members, "weights.pt": b"x"}, "holds meta.json and model.skops"),
        "no payload": ({"meta.json": members["meta.json"]}, "holds meta.json and model.skops"),
    }
    for name, (content, msg) in cases.items():
        with pytest.raises(DataError, match=msg) as e:
            load_bundle(_write(tmp_path / f"{name}.mekit", content))
        _one_line(e)
    dup = tmp_path / "dup.mekit"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it writes
        with zipfile.ZipFile(dup, "w") as z:
            for n, data in members.items():
                z.writestr(n, data)
            z.writestr("meta.json", b"{}")
    with pytest.raises(DataError, match="holds 'meta.json' twice"):
        load_bundle(dup)
    many = tmp_path / "many.mekit"
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<2H", data, end + 8, 65535, 65535)  # an end record announcing 65535 members
    many.write_bytes(bytes(data))
    with pytest.raises(DataError, match="65535 members"):
        load_bundle(many)


def test_a_skops_file_with_too_many_members_is_refused(trained, clean_skops, tmp_path):
    path, _ = trained
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(clean_skops)) as src, zipfile.ZipFile(out, "w") as z:
        for n in src.namelist():
            z.writestr(n, src.read(n))
        for i in range(SKOPS_LIMITS["members"]):
            z.writestr(f"{10 ** 9 + i}.npy", b"")
    members = {**_members(path), "model.skops": out.getvalue()}
    with pytest.raises(DataError, match="model.skops has .* members"):
        load_bundle(_write(tmp_path / "many.mekit", members))


# -- zip bombs: refused before memory fills ------------------------------------------------
BOMB_SCRIPT = textwrap.dedent('''
    import io, json, resource, struct, sys, zipfile, zlib
    from pathlib import Path
    import skops.io, torch  # imported before the baseline is taken
    from mekit.engine.bundle import load_bundle
    from mekit.errors import DataError

    GIB = 1 << 30
    clean = {n: bytes.fromhex(v) for n, v in json.loads(sys.argv[2]).items()}
    tmp = Path(sys.argv[1])
    comp, crc = zlib.compressobj(9, zlib.DEFLATED, -15), 0
    zero, parts = bytes(1 << 20), []
    for _ in range(GIB >> 20):
        parts.append(comp.compress(zero))
        crc = zlib.crc32(zero, crc)
    parts.append(comp.flush())
    bomb = b"".join(parts)  # 1 GiB of zeros deflated to about 1 MB

    def raw_zip(entries):
        """A zip written by hand, so a header can declare any size."""
        out, cd = bytearray(), bytearray()
        for name, data, crc_, size, method in entries:
            n, off = name.encode(), len(out)
            out += struct.pack("<4s5H3L2H", b"PK\\x03\\x04", 20, 0, method, 0, 0, crc_, len(data), size, len(n), 0)
            out += n + data
            cd += struct.pack("<4s6H3L5H2L", b"PK\\x01\\x02", 20, 20, 0, method, 0, 0, crc_, len(data), size,
                              len(n), 0, 0, 0, 0, 0, off) + n
        return bytes(out + cd + struct.pack("<4s4H2LH", b"PK\\x05\\x06", 0, 0, len(entries), len(entries),
                                            len(cd), len(out), 0))

    def stored(name, data):
        return (name, data, zlib.crc32(data), len(data), 0)

    neural = json.dumps({**json.loads(clean["meta.json"]), "kind": "neural", "model_name": "ststnet"}).encode()
    skops_bomb = raw_zip([stored("schema.json", clean["schema.json"]), ("1.npy", bomb, crc, GIB, 8)])
    skops_liar = raw_zip([stored("schema.json", clean["schema.json"]), ("1.npy", bomb, crc, 100, 8)])
    cases = {
        "meta.json of 1 GiB": [("meta.json", bomb, crc, GIB, 8), stored("model.skops", clean["model.skops"])],
        "meta.json lying about its size": [("meta.json", bomb, crc, 100, 8), stored("model.skops", clean["model.skops"])],
        "meta.json of 17 MiB": [stored("meta.json", b" " * (17 << 20)), stored("model.skops", clean["model.skops"])],
        "weights.pt of 1 GiB": [stored("meta.json", neural), ("weights.pt", bomb, crc, GIB, 8)],
        "weights.pt lying about its size": [stored("meta.json", neural), ("weights.pt", bomb, crc, 1000, 8)],
        "model.skops of 1 GiB": [stored("meta.json", clean["meta.json"]), ("model.skops", bomb, crc, GIB, 8)],
        "a skops member of 1 GiB": [stored("meta.json", clean["meta.json"]), stored("model.skops", skops_bomb)],
        "a skops member lying about its size": [stored("meta.json", clean["meta.json"]),
                                                stored("model.skops", skops_liar)],
    }
    paths = {}
    for name, entries in cases.items():
        paths[name] = tmp / (name.replace(" ", "_") + ".mekit")
        paths[name].write_bytes(raw_zip(entries))
    del parts, cases, skops_bomb, skops_liar
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = {}
    for name, p in paths.items():
        try:
            load_bundle(p)
            results[name] = "LOADED"
        except DataError as e:
            results[name] = str(e)
        except BaseException as e:
            results[name] = "CRASH " + type(e).__name__ + ": " + str(e)[:200]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kb": base, "peak_kb": peak, "results": results}))
''')


@pytest.mark.slow
def test_zip_bombs_are_refused_within_bounded_memory(trained, clean_skops, tmp_path):
    path, _ = trained
    members = _members(path)
    with zipfile.ZipFile(io.BytesIO(clean_skops)) as z:
        schema = z.read("schema.json")
    clean = {"meta.json": members["meta.json"].hex(), "model.skops": clean_skops.hex(), "schema.json": schema.hex()}
    res = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(tmp_path), json.dumps(clean)],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for name, msg in out["results"].items():
        assert msg.startswith(str(tmp_path)) and "not a valid mekit bundle" in msg, (name, msg)
        assert len(msg.splitlines()) == 1, (name, msg)
    grown_mb = (out["peak_kb"] - out["base_kb"]) / 1024
    print(f"peak memory grew by {grown_mb:.1f} MB while loading {len(out['results'])} zip bombs")
    assert grown_mb < 300, out


def test_limits_are_those_documented():
    assert LIMITS == {"meta.json": 16 << 20, "weights.pt": 512 << 20, "model.skops": 512 << 20}


# -- damaged archives and meta.json ---------------------------------------------------------
def _corruptions(raw: bytes) -> dict[str, bytes]:
    rng = np.random.default_rng(1234)
    out = {f"truncated at {n}": raw[:n] for n in (0, 4, 30, 100, len(raw) // 3, len(raw) // 2, len(raw) - 23,
                                                  len(raw) - 1)}
    for at in sorted(rng.choice(len(raw), size=24, replace=False).tolist()) + [len(raw) - 22 + k for k in (8, 10, 12, 16)]:
        flipped = bytearray(raw)
        flipped[at] ^= 1 << int(rng.integers(8))
        out[f"bit flipped at {at}"] = bytes(flipped)
    return out


def test_damaged_bundles_are_refused_with_one_line(trained, tmp_path):
    path, _ = trained
    refused = 0
    for name, data in _corruptions(path.read_bytes()).items():
        bad = tmp_path / "bad.mekit"
        bad.write_bytes(data)
        try:
            load_bundle(bad)  # a flip in a byte nothing reads (a date field) leaves a loadable bundle
        except DataError as e:
            assert len(str(e).splitlines()) == 1 and str(bad) in str(e), (name, e)
            refused += 1
    assert refused >= 25


def test_damaged_bundles_through_mekit_predict(trained, tmp_path, monkeypatch, capsys):
    path, image = trained
    raw = path.read_bytes()
    cases = {k: v for k, v in _corruptions(raw).items() if k.startswith("truncated")}
    for k, v in list(_corruptions(raw).items())[8:14]:
        cases[k] = v
    for name, data in cases.items():
        bad = tmp_path / f"{name.replace(' ', '_')}.mekit"
        bad.write_bytes(data)
        try:
            load_bundle(bad)
        except DataError:
            err = _cli_fails(["predict", bad, image, "--out", tmp_path / "p.csv"], monkeypatch, capsys)
            assert "not a valid mekit bundle" in err, (name, err)


def _meta_cases() -> dict[str, tuple]:
    """name -> (change to meta.json, words the refusal must contain)."""
    drop = lambda *keys: lambda m: [m.pop(k, None) for k in keys]  # noqa: E731
    put = lambda k, v: lambda m: m.__setitem__(k, v)  # noqa: E731
    return {
        "format_version string": (put("format_version", "1"), "format_version"),
        "format_version negative": (put("format_version", -1), "format version -1"),
        "format_version older": (put("format_version", 0), "format version 0"),
        "format_version newer": (put("format_version", 2), "newer"),
        "format_version bool": (put("format_version", True), "format_version"),
        "format_version missing": (drop("format_version"), "format_version"),
        "format wrong": (put("format", "zip"), "format"),
        "classes missing": (drop("classes"), "classes is missing"),
        "classes a string": (put("classes", "abc"), "classes is a str"),
        "classes numbers": (put("classes", [1, 2]), "classes"),
        "model_classes missing": (drop("model_classes"), "model_classes is missing"),
        "model_classes unknown": (put("model_classes", ["x", "y"]), "model_classes"),
        "config missing": (drop("config"), "config is missing"),
        "config a list": (put("config", []), "config is a list"),
        "config bad value": (put("config", {"seed": "x"}), "config.seed"),
        "config unknown key": (put("config", {"colour": 1}), "colour"),
        "kind missing": (drop("kind"), "kind is missing"),
        "kind unknown": (put("kind", "quantum"), "kind is a str"),
        "task unknown": (put("task", "dance"), "task"),
        "features a list": (put("features", [1]), "features"),
        "features shape": (put("features", {"shape": "81"}), "features"),
        "label_scheme a string": (put("label_scheme", "x"), "label_scheme"),
        "preprocess bad value": (put("preprocess", {"size": "big"}), "preprocess.size"),
        "training sample_ids": (put("training", {"sample_ids": 5}), "training"),
        "not an object": (lambda m: m.clear() or m.update({"__list__": True}), "format"),
    }


@pytest.fixture(scope="module")
def neural_bundle(tmp_path_factory):
    """A neural bundle (untrained weights are enough to test loading)."""
    from mekit.engine.trainer import NeuralModel

    nm = NeuralModel("ststnet", {"epochs": 1}, seed=0)
    nm.classes_ = np.array(["a", "b"])
    nm.model_ = nm._build(2)
    return save_bundle(tmp_path_factory.mktemp("neural") / "n.mekit", nm, load_config(overrides={"model.name": "ststnet"}),
                       ["a", "b"])


@pytest.mark.parametrize("case", list(_meta_cases()))
def test_bad_meta_json_is_refused_with_one_line(case, trained, tmp_path, monkeypatch, capsys):
    path, image = trained
    change, words = _meta_cases()[case]
    members = _members(path)
    meta = json.loads(members["meta.json"])
    change(meta)
    bad = _write(tmp_path / "bad.mekit", {**members, "meta.json": json.dumps(meta).encode()})
    with pytest.raises(DataError, match="not a valid mekit bundle") as e:
        load_bundle(bad)
    assert words in _one_line(e)
    err = _cli_fails(["predict", bad, image, "--out", tmp_path / "p.csv"], monkeypatch, capsys)
    assert words in err


def test_bad_neural_meta_json_is_refused(neural_bundle, tmp_path):
    members = _members(neural_bundle)
    assert load_bundle(neural_bundle).meta["model_name"] == "ststnet"
    for change, words in [(lambda m: m.pop("model_name"), "model_name is missing"),
                          (lambda m: m.__setitem__("model_name", 3), "model_name is a int"),
                          (lambda m: m.__setitem__("model_name", "nope"), "nope"),
                          (lambda m: m.__setitem__("train", {"epochs": "x"}), "epochs"),
                          (lambda m: m.__setitem__("model_classes", ["a", "b", "a"]), "model_classes")]:
        meta = json.loads(members["meta.json"])
        change(meta)
        bad = _write(tmp_path / "bad.mekit", {**members, "meta.json": json.dumps(meta).encode()})
        with pytest.raises(DataError) as e:
            load_bundle(bad)
        assert words in _one_line(e)
    buf = io.BytesIO()
    pickle.dump(_Evil(str(tmp_path / "ran")), buf)  # weights_only refuses any object but tensors
    with pytest.raises(DataError, match="cannot be read safely"):
        load_bundle(_write(tmp_path / "evil.mekit", {**members, "weights.pt": buf.getvalue()}))
    assert not (tmp_path / "ran").exists()


# -- runtime settings never come from a bundle -----------------------------------------------
def test_a_bundle_cannot_choose_where_mekit_writes(trained, tmp_path):
    from mekit.engine.predict import predict

    path, image = trained
    evil = tmp_path / "evil"
    members = _members(path)
    meta = json.loads(members["meta.json"])
    runtime = {"cache_dir": str(evil / "cache"), "workers": 64, "cache": True, "fsync": False}
    meta["preprocess"].update(runtime)
    meta["config"]["preprocess"].update(runtime)
    meta["config"]["output"] = {"dir": str(evil / "out"), "mlflow": True, "mlflow_uri": str(evil / "mlruns"),
                                "plots": True}
    meta["config"]["data"]["root"] = str(evil / "data")
    meta["config"]["protocol"].update({"workers": 64, "executor": "ray", "address": "10.0.0.9:6379"})
    bad = _write(tmp_path / "runtime.mekit", {**members, "meta.json": json.dumps(meta).encode()})
    b = load_bundle(bad)
    assert str(evil) not in json.dumps(b.meta)
    assert "workers" not in b.meta["preprocess"] and "output" not in b.meta["config"]
    assert not {"workers", "executor", "address"} & set(b.meta["config"]["protocol"])
    predict(bad, image)  # an ad-hoc input: preprocessed in a temporary folder
    predict(bad, loader="synthetic", **SYNTH)  # a dataset: preprocessed into mekit's own cache
    assert not evil.exists()
    saved = _members(save_bundle(tmp_path / "again.mekit", b.model, load_config(overrides={
        "preprocess": {**PRE, "cache_dir": str(evil)}, "output.dir": str(evil)}), b.classes))
    assert str(evil) not in saved["meta.json"].decode()  # nor is any written into one
