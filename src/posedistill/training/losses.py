"""Losses: heatmap MSE with intermediate supervision, and the Fast Pose Distillation (FPD) loss.

FPD (Zhang, Zhu, Ye, "Fast Human Pose Estimation", CVPR 2019), for every student stack s::

    L_s = alpha * MSE(student_s, teacher_final) + (1 - alpha) * MSE(student_s, ground_truth)

summed over stacks. All terms are vectorised over the batch, joints and pixels (no Python loop over samples).

Both losses take an optional ``fg_weight`` (lambda): every pixel's squared error is weighted by
``1 + lambda * clamp(target, 0, 1)``, where ``target`` is the map that term regresses to (the ground truth for
the ground-truth term, the teacher's map for the distillation term). With lambda = 0 this is the paper's plain
MSE. Plain MSE is dominated by the ~99 % background pixels, so a network first learns to output near-zero maps
and only then finds the joints; weighting the Gaussian's support shortens that phase (docs/experiments.md).
The weight is a function of the target alone, so the FPD loss keeps its form: alpha * L(student, teacher) +
(1 - alpha) * L(student, ground truth) with the same L.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["weighted_heatmap_mse", "HeatmapLoss", "FPDLoss"]


def weighted_heatmap_mse(pred: Tensor, target: Tensor, weight: Tensor, fg_weight: float = 0.0) -> Tensor:
    """Mean over N x K x H x W of ``weight[n, k] * (1 + fg_weight * clamp(target, 0, 1)) * (pred - target) ** 2``.

    Args:
        pred, target: ``N x K x H x W`` heatmaps.
        weight: ``N x K`` per-joint weights (0 masks a joint out).
        fg_weight: extra weight of the target's foreground (0: plain MSE).
    """
    if pred.shape != target.shape:
        raise ValueError(f"heatmap shapes differ: prediction {tuple(pred.shape)}, target {tuple(target.shape)}")
    if weight.shape != pred.shape[:2]:
        raise ValueError(f"weight must be N x K = {tuple(pred.shape[:2])}, got {tuple(weight.shape)}")
    target = target.float()
    diff = (pred.float() - target).square()
    if fg_weight:
        diff = diff * (1.0 + fg_weight * target.clamp(0.0, 1.0))
    return (diff * weight.float()[:, :, None, None]).mean()


class HeatmapLoss(nn.Module):
    """Heatmap MSE with per-joint target weights, summed over all stacks (intermediate supervision).

    Args:
        fg_weight: foreground weight lambda of :func:`weighted_heatmap_mse` (0: plain MSE).
    """

    def __init__(self, fg_weight: float = 0.0) -> None:
        super().__init__()
        if not fg_weight >= 0:
            raise ValueError(f"fg_weight must be >= 0, got {fg_weight}")
        self.fg_weight = float(fg_weight)

    def forward(self, outputs: Sequence[Tensor], target: Tensor, weight: Tensor) -> Tensor:
        return torch.stack([weighted_heatmap_mse(o, target, weight, self.fg_weight) for o in outputs]).sum()


class FPDLoss(nn.Module):
    """Fast Pose Distillation loss ``alpha * L_pd + (1 - alpha) * L_gt`` at every student stack.

    Args:
        alpha: weight of the distillation term (the paper uses 0.5).
        mask_distillation: if True (as the public FPD code does), the distillation term uses the same per-joint
            visibility weights as the ground-truth term; if False it covers all joints. On unlabeled samples
            (``labeled == 0``) it always covers all joints, and the ground-truth term is zero.
        teacher_norm: how the teacher's heatmaps are used:

            * ``"none"`` (the paper): as they are.
            * ``"peak"``: every teacher heatmap is divided by its maximum (floored at ``PEAK_FLOOR``), so that its
              peak is 1 like the ground truth's. A weak or uncertain teacher emits low, wide maps (peak ~0.4 for
              the CPU-scale teacher of docs/results.md); rescaling keeps where the teacher puts the joint and the
              shape of its belief, at the ground truth's amplitude. Negative values are scaled too.
            * ``"clip"``: clamped to [0, 1], the range of the ground-truth Gaussians. The same teacher, in eval
              mode on some augmented crops, emits values from -5.8 to 10 (``benchmarks/teacher_heatmaps.py``);
              squared, a few such maps dominate the distillation term.
        fg_weight: foreground weight lambda of :func:`weighted_heatmap_mse`, applied alike to both terms (the
            distillation term weights by the teacher's map after ``teacher_norm``).
    """

    PEAK_FLOOR = 0.05

    def __init__(self, alpha: float = 0.5, *, mask_distillation: bool = True, teacher_norm: str = "none",
                 fg_weight: float = 0.0) -> None:
        super().__init__()
        if not fg_weight >= 0:
            raise ValueError(f"fg_weight must be >= 0, got {fg_weight}")
        self.fg_weight = float(fg_weight)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if teacher_norm not in ("none", "peak", "clip"):
            raise ValueError(f"teacher_norm must be 'none', 'peak' or 'clip', got {teacher_norm!r}")
        self.alpha = float(alpha)
        self.mask_distillation = mask_distillation
        self.teacher_norm = teacher_norm

    def forward(
        self,
        outputs: Sequence[Tensor],
        target: Tensor,
        weight: Tensor,
        teacher: Tensor,
        labeled: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Returns ``{"loss", "gt", "kd"}`` (the total and its two stack-summed terms, unweighted by alpha).

        Args:
            outputs: the student's per-stack heatmaps.
            target, weight: ground-truth heatmaps ``N x K x H x W`` and weights ``N x K``.
            teacher: the teacher's final-stack heatmaps ``N x K x H x W`` (no gradient flows into it).
            labeled: optional ``N`` tensor, 1 for labeled samples and 0 for unlabeled ones.
        """
        teacher = teacher.detach()
        if self.teacher_norm == "peak":
            teacher = teacher / teacher.amax(dim=(-2, -1), keepdim=True).clamp_min(self.PEAK_FLOOR)
        elif self.teacher_norm == "clip":
            teacher = teacher.clamp(0.0, 1.0)
        gt_weight = weight
        kd_weight = weight if self.mask_distillation else torch.ones_like(weight)
        if labeled is not None:
            lab = labeled.to(weight.dtype)[:, None]
            gt_weight = weight * lab
            kd_weight = kd_weight * lab + (1 - lab)
        lam = self.fg_weight
        gt = torch.stack([weighted_heatmap_mse(o, target, gt_weight, lam) for o in outputs]).sum()
        kd = torch.stack([weighted_heatmap_mse(o, teacher, kd_weight, lam) for o in outputs]).sum()
        return {"loss": self.alpha * kd + (1 - self.alpha) * gt, "gt": gt, "kd": kd}
