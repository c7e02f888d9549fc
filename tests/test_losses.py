import pytest
import torch

from posedistill.training.losses import FPDLoss, HeatmapLoss, weighted_heatmap_mse


def _maps(n=2, k=3, h=4, w=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, k, h, w, generator=g)


def test_weighted_mse_hand_computed():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.ones(1, 2, 2, 2)
    target[0, 1] = 3.0
    weight = torch.tensor([[1.0, 0.0]])
    # joint 0: (0-1)^2 = 1 on 4 pixels; joint 1 masked -> sum 4 over 8 elements
    assert weighted_heatmap_mse(pred, target, weight).item() == pytest.approx(0.5)
    assert weighted_heatmap_mse(pred, target, torch.ones(1, 2)).item() == pytest.approx((4 + 36) / 8)


def test_weighted_mse_shape_errors():
    with pytest.raises(ValueError, match="heatmap shapes differ"):
        weighted_heatmap_mse(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="weight must be N x K"):
        weighted_heatmap_mse(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.ones(2))


def test_heatmap_loss_sums_stacks():
    target, weight = _maps(seed=1), torch.ones(2, 3)
    outs = [_maps(seed=2), _maps(seed=3)]
    expected = sum(weighted_heatmap_mse(o, target, weight) for o in outs)
    assert HeatmapLoss()(outs, target, weight).item() == pytest.approx(expected.item())


def test_fpd_alpha_extremes_and_mix():
    target, teacher, weight = _maps(seed=1), _maps(seed=4), torch.ones(2, 3)
    outs = [_maps(seed=2), _maps(seed=3)]
    gt = HeatmapLoss()(outs, target, weight)
    kd = HeatmapLoss()(outs, teacher, weight)
    assert FPDLoss(0.0)(outs, target, weight, teacher)["loss"].item() == pytest.approx(gt.item())
    assert FPDLoss(1.0)(outs, target, weight, teacher)["loss"].item() == pytest.approx(kd.item())
    mixed = FPDLoss(0.25)(outs, target, weight, teacher)
    assert mixed["loss"].item() == pytest.approx(0.25 * kd.item() + 0.75 * gt.item())
    assert mixed["gt"].item() == pytest.approx(gt.item()) and mixed["kd"].item() == pytest.approx(kd.item())


def test_fpd_masking_of_distillation_term():
    target, teacher = _maps(seed=1), _maps(seed=4)
    weight = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    outs = [_maps(seed=2)]
    masked = FPDLoss(1.0, mask_distillation=True)(outs, target, weight, teacher)["kd"]
    full = FPDLoss(1.0, mask_distillation=False)(outs, target, weight, teacher)["kd"]
    assert masked.item() == pytest.approx(weighted_heatmap_mse(outs[0], teacher, weight).item())
    assert full.item() == pytest.approx(weighted_heatmap_mse(outs[0], teacher, torch.ones(2, 3)).item())
    assert full.item() > masked.item()


def test_fpd_unlabeled_samples_only_distill():
    target, teacher = _maps(seed=1), _maps(seed=4)
    weight = torch.ones(2, 3)
    weight[1] = 0.0  # an unlabeled sample has no ground-truth weights
    labeled = torch.tensor([1, 0])
    outs = [_maps(seed=2)]
    terms = FPDLoss(0.5, mask_distillation=True)(outs, target, weight, teacher, labeled)
    gt_w = torch.tensor([[1.0] * 3, [0.0] * 3])
    assert terms["gt"].item() == pytest.approx(weighted_heatmap_mse(outs[0], target, gt_w).item())
    # the unlabeled sample is distilled on all joints even though its visibility weights are zero
    assert terms["kd"].item() == pytest.approx(weighted_heatmap_mse(outs[0], teacher, torch.ones(2, 3)).item())


def test_fpd_gradient_reaches_student_not_teacher():
    student = _maps(seed=2).requires_grad_(True)
    teacher = _maps(seed=4).requires_grad_(True)
    FPDLoss(0.5)([student], _maps(seed=1), torch.ones(2, 3), teacher)["loss"].backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_fpd_rejects_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        FPDLoss(1.5)


def test_fpd_peak_normalised_teacher():
    target, weight = _maps(seed=1), torch.ones(2, 3)
    teacher = 0.4 * _maps(seed=4)  # a low, soft teacher
    teacher[0, 0] = 0.0  # a blank map: the floor keeps it finite (and zero)
    outs = [_maps(seed=2)]
    peak = teacher / teacher.amax(dim=(-2, -1), keepdim=True).clamp_min(FPDLoss.PEAK_FLOOR)
    assert peak[1].amax(dim=(-2, -1)).allclose(torch.ones(3)) and peak[0, 0].abs().max() == 0
    kd = FPDLoss(1.0, teacher_norm="peak")(outs, target, weight, teacher)["kd"]
    assert kd.item() == pytest.approx(weighted_heatmap_mse(outs[0], peak, weight).item())
    assert kd.item() != pytest.approx(FPDLoss(1.0)(outs, target, weight, teacher)["kd"].item())
    with pytest.raises(ValueError, match="teacher_norm"):
        FPDLoss(0.5, teacher_norm="softmax")


def test_fpd_clipped_teacher():
    target, weight, outs = _maps(seed=1), torch.ones(2, 3), [_maps(seed=2)]
    teacher = 12 * _maps(seed=4) - 6  # outliers both ways, as a teacher in eval mode can emit
    kd = FPDLoss(1.0, teacher_norm="clip")(outs, target, weight, teacher)["kd"]
    assert kd.item() == pytest.approx(weighted_heatmap_mse(outs[0], teacher.clamp(0, 1), weight).item())
    assert kd.item() < FPDLoss(1.0)(outs, target, weight, teacher)["kd"].item()
