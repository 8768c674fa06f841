"""The compute section on a CPU-only machine: device resolution and its errors, mixed precision
(bf16 on the CPU), strict determinism, channels-last, bundles loaded onto the CPU, and the
epoch events of both training loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mekit import events
from mekit.config import ComputeConfig, from_dict, load_config, load_yaml
from mekit.engine.trainer import NeuralModel, Runtime, check_compute, resolve_device
from mekit.errors import ConfigError

FAST = {"epochs": 2, "batch_size": 12, "lr": 3e-3, "selection": "fixed", "augment": {"affine": 0.0}}
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors of a machine without CUDA")


def _data(n=36, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b", "c"] * (n // 3))
    X = rng.normal(0, 0.3, (n, 3, 28, 28)).astype(np.float32)
    for i, lab in enumerate(y):
        k = "abc".index(lab)
        X[i, 0, 4 + 8 * k: 10 + 8 * k, 4:24] += 1.5
    return X, y, np.array([f"s{i % 6}" for i in range(n)])


def _one_line(e: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(e.value)
    return str(e.value)


# -- the section ----------------------------------------------------------------------------------
@pytest.mark.parametrize("key,value", [("device", "gpu"), ("device", "cuda:x"), ("amp", "fp8"), ("amp", True),
                                       ("channels_last", "maybe"), ("deterministic", "yes")])
def test_unknown_values_are_refused_at_load(key, value):
    with pytest.raises(ConfigError, match=rf"compute.{key}") as e:
        load_config(None, {f"compute.{key}": value})
    _one_line(e)


def test_yaml_off_and_on_read_as_words():
    """YAML 1.1 reads bare off/on as booleans; the section takes them as the words written."""
    c = from_dict(ComputeConfig, load_yaml("{amp: off, channels_last: on, device: 'cuda:1'}"), "compute")
    assert (c.amp, c.channels_last, c.device) == ("off", "on", "cuda:1")
    assert load_config(None, {}).compute == ComputeConfig()


def test_auto_and_cpu_resolve_on_this_machine():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_cuda_where_there_is_none_is_one_line(spec):
    with pytest.raises(ConfigError, match=rf"^compute.device: '{spec}'; this machine has") as e:
        resolve_device(spec)
    _one_line(e)
    from mekit.evaluation.validate import validate_config

    with pytest.raises(ConfigError, match=r"^compute.device"):
        validate_config(load_config(None, {"model.name": "ststnet", "compute.device": spec}))
    # classical models do not read the section
    validate_config(load_config(None, {"model.name": "logreg", "compute.device": spec}))


@no_cuda
def test_fp16_needs_cuda():
    with pytest.raises(ConfigError, match=r"^compute.amp: 'fp16' needs a CUDA device") as e:
        check_compute({"device": "cpu", "amp": "fp16"})
    _one_line(e)


# -- training -------------------------------------------------------------------------------------
def test_bf16_autocast_trains_ststnet_on_the_cpu():
    X, y, g = _data()
    m = NeuralModel("ststnet", FAST, seed=0, compute={"device": "cpu", "amp": "bf16"}).fit(X, y, g)
    assert all(np.isfinite(h["train_loss"]) for h in m.history_)
    p = m.predict_proba(X)
    assert p.dtype == np.float32 and np.allclose(p.sum(1), 1, atol=1e-3)
    assert m.selection_["compute"] == {"device": "cpu", "amp": "bf16", "channels_last": False,
                                       "deterministic": False}
    assert m.describe()["compute"]["amp"] == "bf16"


def test_deterministic_mode_gives_identical_weights_and_is_undone():
    X, y, g = _data()
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    seen = []

    def strict_inside(*a, **k):
        seen.append(torch.is_deterministic_algorithms_warn_only_enabled())

    states = []
    for _ in range(2):
        m = NeuralModel("ststnet", FAST, seed=5, compute={"device": "cpu", "deterministic": True})
        with events.listen(lambda e: strict_inside()):
            m.fit(X, y, g)
        states.append(m.model_.state_dict())
    assert seen and not any(seen)  # strict (no warn-only) while training
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k
    assert (torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled()) == before


def test_channels_last_is_a_layout_not_a_different_model():
    """The same weights predict the same in either layout (training in the two layouts differs
    by rounding only, which Adam can amplify over a few steps, so it is not compared)."""
    import copy

    X, y, g = _data()
    a = NeuralModel("ststnet", FAST, seed=1, compute={"device": "cpu"}).fit(X, y, g)
    assert a.selection_["compute"]["channels_last"] is False
    b = copy.deepcopy(a).to({"device": "cpu", "channels_last": "on"})
    assert b.runtime_["channels_last"] is True
    conv = next(p for p in b.model_.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)
    c = NeuralModel("ststnet", FAST, seed=1, compute={"device": "cpu", "channels_last": "on"}).fit(X, y, g)
    assert c.selection_["compute"]["channels_last"] is True
    assert all(np.isfinite(h["train_loss"]) for h in c.history_)


def test_runtime_layout_rules():
    assert not Runtime({"device": "cpu"}, four_d_input=True).channels_last  # auto: CUDA only
    assert not Runtime({"device": "cpu", "channels_last": "on"}, four_d_input=False).channels_last  # 5-D input


# -- events ---------------------------------------------------------------------------------------
def test_a_two_epoch_fit_emits_two_epoch_events():
    X, y, g = _data()
    got: list[events.Event] = []
    with events.listen(got.append):
        m = NeuralModel("ststnet", {**FAST, "selection": "inner_val", "patience": 5}, seed=0,
                        compute={"device": "cpu"}).fit(X, y, g)
    ep = [e for e in got if e.kind == "epoch"]
    assert [e["epoch"] for e in ep] == [1, 2]
    for e, h in zip(ep, m.history_):
        assert e["stage"] == "train" and e["epochs"] == 2
        assert e["loss"] == pytest.approx(h["train_loss"]) and e["lr"] == pytest.approx(h["lr"])
        assert e["val"] == pytest.approx(h["val_uf1"])


def test_intensity_net_emits_epoch_events():
    from mekit.intensity.models import ClipInput, IntensityNet, IntensitySettings

    rng = np.random.default_rng(0)
    clips = [ClipInput(f"c{i}", np.arange(5), stack=rng.normal(0, 1, (5, 3, 28, 28)).astype(np.float16))
             for i in range(6)]
    targets = [np.linspace(0, 1, 5) for _ in clips]
    got: list[events.Event] = []
    with events.listen(got.append):
        net = IntensityNet("ststnet", {**FAST, "batch_size": 8}, IntensitySettings(), seed=0,
                           compute={"device": "cpu"}).fit(clips, targets, np.array([f"s{i}" for i in range(6)]))
    ep = [e for e in got if e.kind == "epoch"]
    assert [(e["epoch"], e["epochs"], e["val"]) for e in ep] == [(1, 2, None), (2, 2, None)]
    assert net.selection_["compute"]["device"] == "cpu"
    assert net.predict_clip(clips[0]).shape == (5,)


# -- bundles --------------------------------------------------------------------------------------
def test_bundles_load_through_the_cpu_onto_the_device(tmp_path, monkeypatch):
    """Weights saved from a GPU model hold CUDA tensors; reading them with map_location='cpu'
    is what lets a CPU machine load them, before the model moves to the requested device."""
    from mekit.engine.bundle import load_bundle, save_bundle

    X, y, g = _data()
    m = NeuralModel("ststnet", FAST, seed=0, compute={"device": "cpu"}).fit(X, y, g)
    cfg = load_config(None, {"model.name": "ststnet", "compute.device": "cpu"})
    path = save_bundle(tmp_path / "m.mekit", m, cfg, ["a", "b", "c"])
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real(*a, **k))
    b = load_bundle(path, device="cpu")
    assert calls and all(k.get("map_location") == "cpu" for k in calls)
    assert {p.device.type for p in b.model.model_.parameters()} == {"cpu"}
    np.testing.assert_allclose(b.model.predict_proba(X), m.predict_proba(X), atol=1e-6)
    assert "compute" not in b.meta["config"]  # the reading machine picks its device
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^compute.device: 'cuda'"):
            load_bundle(path, device="cuda")
