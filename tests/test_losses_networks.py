import math

import pytest
import torch
import torch.nn.functional as F

from training.config import SYSTEMS
from training.losses import alpha_focal_loss, binary_focal_loss, class_alpha, soft_jaccard_loss
from training.networks import ClickNet, WithProbabilities


def test_binary_focal_loss_by_hand():
    # logit 0 -> p = 0.5 for either target: (1 - 0.5)^2 * ln 2; logit ln 3 -> p = 0.75 for target 1.
    logits = torch.tensor([0.0, math.log(3.0)])
    target = torch.tensor([1.0, 1.0])
    expected = (0.25 * math.log(2) + 0.0625 * math.log(4 / 3)) / 2
    assert binary_focal_loss(logits, target, gamma=2).item() == pytest.approx(expected, rel=1e-6)
    # gamma = 0 is plain binary cross-entropy
    assert binary_focal_loss(logits, target, gamma=0).item() == pytest.approx((math.log(2) + math.log(4 / 3)) / 2)


def test_alpha_focal_loss_by_hand():
    logits = torch.tensor([[math.log(3.0), 0.0]])  # p = (0.75, 0.25)
    alpha = torch.tensor([2.0, 0.5])
    expected_0 = 2.0 * 0.25**2 * -math.log(0.75)
    expected_1 = 0.5 * 0.75**2 * -math.log(0.25)
    assert alpha_focal_loss(logits, torch.tensor([0]), alpha).item() == pytest.approx(expected_0, rel=1e-6)
    assert alpha_focal_loss(logits, torch.tensor([1]), alpha).item() == pytest.approx(expected_1, rel=1e-6)


def test_class_alpha_is_inverse_frequency_with_mean_one():
    a = class_alpha([300, 100])
    assert a.mean().item() == pytest.approx(1.0)
    assert (a[1] / a[0]).item() == pytest.approx(3.0)


def test_soft_jaccard_loss_is_zero_for_a_confident_exact_mask():
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :2] = 1
    logits = (target * 2 - 1) * 50
    assert soft_jaccard_loss(logits, target, eps=1e-6).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_systems_map_inputs_to_mask_and_class_logits(system):
    net = ClickNet(system, num_classes=4, width=0.125, cls_pool="mask").eval()
    mask, cls = net(torch.randn(2, 3, 64, 64))
    assert mask.shape == (2, 1, 64, 64) and cls.shape == (2, 4)
    probs_mask, probs = WithProbabilities(net)(torch.randn(1, 3, 64, 64))
    assert probs_mask.min() >= 0 and probs_mask.max() <= 1
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_classification_only_ignores_the_clicks():
    net = ClickNet("cls", num_classes=2, width=0.125).eval()
    x = torch.randn(1, 3, 64, 64)
    y = x.clone()
    y[:, 1:] = torch.rand(1, 2, 64, 64)
    assert torch.equal(net(x)[1], net(y)[1])


def drawn_driu(head, feats, size):
    """The DRIU head exactly as drawn: upsample every side, concatenate, 1x1 conv."""
    ups = [
        F.interpolate(side(f), size=size, mode="bilinear", align_corners=False)
        for side, f in zip(head.sides, feats[1:], strict=True)
    ]
    return head.fuse(torch.cat(ups, dim=1))


def test_driu_head_fast_form_equals_the_drawn_form():
    net = ClickNet("joint", num_classes=2, width=0.25).eval()
    with torch.no_grad():
        for p in net.seg_head.parameters():
            p.normal_()
        x = torch.randn(2, 3, 96, 96)
        feats = net.encoder(x)
        fast = net.seg_head(feats, (96, 96))
        drawn = drawn_driu(net.seg_head, feats, (96, 96))
    torch.testing.assert_close(fast, drawn, rtol=1e-4, atol=1e-4)


def test_width_multiplier_sizes_the_encoder():
    assert ClickNet("joint", 2, width=1.0).encoder.channels == [64, 128, 256, 512, 512]
    assert ClickNet("joint", 2, width=0.25).encoder.channels == [16, 32, 64, 128, 128]
