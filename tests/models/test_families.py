"""Architecture facts per family: published layer sizes, layouts, options, input errors."""

from __future__ import annotations

import pytest
import torch

from mekit.errors import ConfigError, DataError
from mekit.models import build_model, count_parameters, load_backbone_weights
from mekit.models.htnet import tile_regions


# -- shallow flow networks ---------------------------------------------------------------------
def test_ststnet_matches_the_published_layer_sizes():
    m = build_model("ststnet", num_classes=3)
    # 3 streams of 3x3 convs on 3 channels (3, 5, 8 filters) + BN + FC(400 -> 3)
    assert count_parameters(m) == (27 * 3 + 3) + (27 * 5 + 5) + (27 * 8 + 8) + 2 * 16 + (400 * 3 + 3) == 1683
    assert m.num_features == 5 * 5 * 16
    assert [s[0].out_channels for s in m.streams] == [3, 5, 8]


def test_off_apexnet_matches_the_published_parameter_count():
    m = build_model("off_apexnet", num_classes=3)
    assert count_parameters(m) == 2_664_475  # the 2.66 M reported for OFF-ApexNet
    m.eval()
    uv = torch.randn(2, 2, 28, 28)
    stack = torch.cat([uv, torch.randn(2, 1, 28, 28)], dim=1)  # a u/v/strain stack: strain is ignored
    with torch.no_grad():
        torch.testing.assert_close(m(uv), m(stack))
    with pytest.raises(DataError, match="28x28"):
        m(torch.randn(2, 2, 32, 32))


def test_wrong_rank_input_names_the_expected_shape():
    with pytest.raises(DataError, match=r"\[B, 2, C, H, W\]"):
        build_model("siamese", num_classes=3)(torch.randn(2, 3, 16, 16))


# -- ResNet-18: torchvision layout -------------------------------------------------------------
def torchvision_resnet18_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision.models.resnet18's state-dict layout, written out from its definition."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for k in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{k}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    cin = 64
    for i, c in enumerate((64, 128, 256, 512), start=1):
        for j in range(2):
            p = f"layer{i}.{j}"
            shapes[f"{p}.conv1.weight"] = (c, cin if j == 0 else c, 3, 3)
            bn(f"{p}.bn1", c)
            shapes[f"{p}.conv2.weight"] = (c, c, 3, 3)
            bn(f"{p}.bn2", c)
            if j == 0 and i > 1:
                shapes[f"{p}.downsample.0.weight"] = (c, cin, 1, 1)
                bn(f"{p}.downsample.1", c)
        cin = c
    shapes["fc.weight"] = (1000, 512)
    shapes["fc.bias"] = (1000,)
    return shapes


def test_resnet18_flow_has_torchvision_layout_and_mlp_head():
    m = build_model("resnet18_flow", num_classes=5)
    tv = torchvision_resnet18_shapes()
    own = {k: tuple(v.shape) for k, v in m.state_dict().items() if not k.startswith("fc.")}
    assert own == {k: v for k, v in tv.items() if not k.startswith("fc.")}
    linears = [mod for mod in m.fc.modules() if isinstance(mod, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(512, 256), (256, 128), (128, 64), (64, 5)]
    plain = build_model("resnet18_flow", num_classes=1000, mlp_dims=())
    assert count_parameters(plain) == 11_689_512  # torchvision resnet18's count


def test_load_backbone_weights_strict_for_backbone_head_replaced(tmp_path):
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.randn(s, generator=g) if s else torch.tensor(7)) for k, s in torchvision_resnet18_shapes().items()}
    path = tmp_path / "resnet18.pth"
    torch.save(sd, path)
    m = build_model("resnet18_flow", num_classes=3, weights=str(path))
    torch.testing.assert_close(m.layer3[1].conv2.weight.detach(), sd["layer3.1.conv2.weight"])
    torch.testing.assert_close(m.bn1.running_var, sd["bn1.running_var"])
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 3)  # the file's 1000-class fc was not loaded

    broken = dict(sd)
    broken.pop("layer2.0.downsample.0.weight")
    broken["layer9.0.conv1.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(DataError, match=r"broken\.pth.*missing.*layer2\.0\.downsample\.0\.weight.*layer9"):
        load_backbone_weights(build_model("resnet18_flow", num_classes=3), tmp_path / "broken.pth")

    wrong = dict(sd)
    wrong["conv1.weight"] = torch.zeros(64, 2, 7, 7)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(DataError, match=r"wrong shape.*conv1\.weight"):
        load_backbone_weights(build_model("resnet18_flow", num_classes=3), tmp_path / "wrong.pth")


def test_load_backbone_weights_refuses_pickled_code_and_missing_files(tmp_path):
    import fractions

    torch.save({"model": fractions.Fraction(1, 3)}, tmp_path / "code.pth")  # needs unpickling a class
    with pytest.raises(DataError, match="weights_only"):
        load_backbone_weights(build_model("compact_cnn", num_classes=3), tmp_path / "code.pth")
    with pytest.raises(DataError, match="not found"):
        load_backbone_weights(build_model("compact_cnn", num_classes=3), tmp_path / "absent.pth")


# -- R(2+1)D-18 ---------------------------------------------------------------------------------
def test_r2plus1d_18_matches_torchvision_layout():
    m = build_model("r2plus1d_18", num_classes=400)
    assert count_parameters(m) == 31_505_325  # torchvision's r2plus1d_18 (Kinetics-400 head)
    sd = m.state_dict()
    assert tuple(sd["stem.0.weight"].shape) == (45, 3, 1, 7, 7)
    assert tuple(sd["stem.3.weight"].shape) == (64, 45, 3, 1, 1)
    # M = 64*64*27 // (64*9 + 3*64) = 144 in layer1; layer2 block 0: 64*128*27 // (64*9 + 3*128) = 230
    assert tuple(sd["layer1.0.conv1.0.0.weight"].shape) == (144, 64, 1, 3, 3)
    assert tuple(sd["layer2.0.conv1.0.3.weight"].shape) == (128, 230, 3, 1, 1)
    assert tuple(sd["layer2.0.conv2.0.0.weight"].shape) == (230, 128, 1, 3, 3)
    assert tuple(sd["layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1, 1)
    assert tuple(sd["fc.weight"].shape) == (400, 512)


# -- siamese and cnn_lstm -----------------------------------------------------------------------
def test_siamese_sees_only_the_change_between_onset_and_apex():
    torch.manual_seed(0)
    m = build_model("siamese", num_classes=3, abs_diff=True).eval()
    assert m.num_features == 2 * 128
    frame = torch.randn(2, 1, 3, 16, 16)
    with torch.no_grad():
        same = m.forward_features(torch.cat([frame, frame], dim=1))
        torch.testing.assert_close(same, torch.zeros_like(same))
        torch.testing.assert_close(m(torch.cat([frame, frame], dim=1)), m.head.bias.expand(2, 3))
        moved = m.forward_features(torch.cat([frame, frame + 1.0], dim=1))
    assert moved.abs().sum() > 0


def test_siamese_accepts_any_2d_backbone_and_rejects_others():
    m = build_model("siamese", num_classes=2, backbone="resnet18_flow", in_chans=1,
                    backbone_kwargs={"layers": (1, 1, 1, 1)})
    assert m.backbone.conv1.in_channels == 1
    assert m.data_config["channels"] == 1 and m.data_config["input_size"] == (2, 1, 64, 64)
    assert m.data_config["mean"] == (0.0,)
    gray = build_model("resnet18_flow", num_classes=2, in_chans=1).data_config
    assert gray["input_size"] == (1, 112, 112) and gray["mean"] == pytest.approx(((0.485 + 0.456 + 0.406) / 3,))
    assert m(torch.randn(2, 2, 1, 32, 32)).shape == (2, 2)
    with pytest.raises(ConfigError, match="c3d_small.*clip3d"):
        build_model("siamese", num_classes=2, backbone="c3d_small")


@pytest.mark.parametrize("rnn, bidirectional, pooling", [("gru", False, "mean"), ("lstm", True, "last")])
def test_cnn_lstm_options(rnn, bidirectional, pooling):
    m = build_model("cnn_lstm", num_classes=4, rnn=rnn, bidirectional=bidirectional, pooling=pooling,
                    hidden_size=16, intensity_head=True)
    assert isinstance(m.rnn, torch.nn.GRU if rnn == "gru" else torch.nn.LSTM)
    assert m.num_features == 16 * (2 if bidirectional else 1)
    out = m.forward_with_intensity(torch.randn(3, 5, 3, 16, 16))
    assert out["logits"].shape == (3, 4) and out["intensity"].shape == (3, 5)


def test_cnn_lstm_rejects_unknown_rnn():
    with pytest.raises(ConfigError, match="'transformer'"):
        build_model("cnn_lstm", num_classes=3, rnn="transformer")


# -- HTNet --------------------------------------------------------------------------------------
def test_tile_regions_places_the_four_windows():
    flow = torch.arange(3 * 40 * 50, dtype=torch.float32).view(1, 3, 40, 50)
    centers = torch.tensor([[[10.0, 10.0], [40.0, 10.0], [10.0, 30.0], [49.0, 39.0]]])
    out = tile_regions(flow, centers, crop=14)
    assert out.shape == (1, 3, 28, 28)
    torch.testing.assert_close(out[0, :, :14, :14], flow[0, :, 3:17, 3:17])     # left eye
    torch.testing.assert_close(out[0, :, :14, 14:], flow[0, :, 3:17, 33:47])    # right eye
    torch.testing.assert_close(out[0, :, 14:, :14], flow[0, :, 23:37, 3:17])    # left lip
    torch.testing.assert_close(out[0, :, 14:, 14:], flow[0, :, 26:40, 36:50])   # clamped at the border
    with pytest.raises(DataError, match="four"):
        tile_regions(flow, centers[:, :3], crop=14)


def test_htnet_attends_within_regions_first():
    torch.manual_seed(0)
    m = build_model("htnet", num_classes=3).eval()
    first = m.levels[0]
    assert first.blocks == 2 and first.pos_embed.shape[1] == 7 * 7  # four 7x7-token regions
    assert m.levels[-1].blocks == 1                                   # then the whole face
    x = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        tokens = m.patch_embed(x)
        base = first(tokens)
        bumped = tokens.clone()
        bumped[..., :7, :7] += 1.0  # change only the left-eye region
        out = first(bumped)
    # local attention: the other three regions are untouched by the change
    torch.testing.assert_close(out[..., 7:, :], base[..., 7:, :])
    torch.testing.assert_close(out[..., :7, 7:], base[..., :7, 7:])
    assert not torch.allclose(out[..., :7, :7], base[..., :7, :7])
    with pytest.raises(ConfigError, match="regions"):
        build_model("htnet", num_classes=3, image_size=30, patch_size=2)
