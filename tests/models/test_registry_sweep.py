"""One parametrised sweep over every registered neural model: the shared contract."""

from __future__ import annotations

import math

import pytest
import torch

from mekit.errors import ConfigError
from mekit.models import INPUT_KINDS, MODELS, build_model, get_data_config
from mekit.models._base import CHANNEL_AXIS

NAMES = MODELS.names()
B = 2

# The fast sweep builds the two deepest families one block per stage (same code paths,
# a quarter of the compute on a 2-core CPU); the full-size builds run in the slow tier.
SHALLOW = {"r2plus1d_18": {"layers": (1, 1, 1, 1)}, "resnet18_flow": {"layers": (1, 1, 1, 1)}}
CASES = [pytest.param(n, SHALLOW.get(n, {}), id=n + ("-shallow" if n in SHALLOW else "")) for n in NAMES]
CASES += [pytest.param(n, {}, id=n + "-full", marks=pytest.mark.slow) for n in SHALLOW]


def small_input(name: str, seed: int = 0) -> torch.Tensor:
    shape = MODELS.meta(name)["min_input_size"]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, *shape, generator=g)


def test_every_family_is_registered():
    assert set(NAMES) >= {"ststnet", "off_apexnet", "resnet18_flow", "siamese", "cnn_lstm", "c3d_small",
                          "r2plus1d_18", "htnet", "efficientnet_lite0", "compact_cnn"}


@pytest.mark.parametrize("name", NAMES)
def test_metadata_is_a_complete_data_contract(name):
    meta = MODELS.meta(name)
    assert meta["input"] in INPUT_KINDS
    assert meta["help"] and isinstance(meta["help"], str)
    assert len(meta["mean"]) == len(meta["std"]) == meta["channels"]
    assert all(s > 0 for s in meta["std"])
    rank = 3 if meta["input"] in ("flow", "dual_flow", "image", "roi_flow") else 4
    assert len(meta["input_size"]) == len(meta["min_input_size"]) == rank
    axis = CHANNEL_AXIS[meta["input"]]
    assert meta["input_size"][axis] == meta["min_input_size"][axis] == meta["channels"]
    cfg = get_data_config(name)
    assert cfg["input_size"] == meta["input_size"] and cfg["mean"] == meta["mean"]


@pytest.mark.parametrize("name, kwargs", CASES)
def test_forward_backward_and_head_contract(name, kwargs):
    torch.manual_seed(0)
    model = build_model(name, num_classes=4, **kwargs)
    assert model.data_config["input"] == MODELS.meta(name)["input"]
    x = small_input(name)
    model.train()
    out = model(x)
    assert out.shape == (B, 4)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 3])).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: no gradient reached {pname}"
            assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"

    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (B, model.num_features)
        torch.testing.assert_close(model.forward_head(feats), model(x))
        model.reset_classifier(7)
        assert model(x).shape == (B, 7)
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), feats)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_intensity_head(name, kwargs):
    torch.manual_seed(0)
    model = build_model(name, num_classes=3, intensity_head=True, **kwargs).eval()
    x = small_input(name)
    with torch.no_grad():
        both = model.forward_with_intensity(x)
        plain = model(x)
    torch.testing.assert_close(both["logits"], plain)  # forward is unchanged by the option
    expected = (B, x.shape[1]) if MODELS.meta(name)["intensity"] == "frame" else (B,)
    assert both["intensity"].shape == expected
    assert model.forward_intensity(x).shape == expected
    with pytest.raises(ConfigError, match="intensity"):
        build_model(name, num_classes=3, **kwargs).forward_intensity(x)


def _param_sum(model: torch.nn.Module) -> float:
    with torch.no_grad():
        return sum(float(p.double().sum()) for p in model.parameters())


@pytest.mark.parametrize("name, kwargs", CASES)
def test_deterministic_under_manual_seed(name, kwargs):
    outs, params = [], []
    for _ in range(2):
        torch.manual_seed(123)
        model = build_model(name, num_classes=3, **kwargs).eval()
        params.append(_param_sum(model))
        with torch.no_grad():
            outs.append(model(small_input(name, seed=5)))
    assert math.isclose(params[0], params[1], rel_tol=0, abs_tol=0)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    torch.manual_seed(124)
    assert _param_sum(build_model(name, num_classes=3, **kwargs)) != params[0]


def test_unknown_model_and_options_raise_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'nope'.*ststnet"):
        build_model("nope", num_classes=3)
    with pytest.raises(ConfigError, match="ststnet.*bogus"):
        build_model("ststnet", num_classes=3, bogus=1)


def test_importing_models_pulls_in_nothing_heavier_than_torch():
    import subprocess
    import sys

    code = ("import sys, mekit.models; bad = [m for m in ('torchvision', 'timm', 'sklearn', 'cv2', 'mediapipe', "
            "'pandas', 'skimage') if m in sys.modules]; print(','.join(bad))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == ""
