"""Evaluation: PCK / PCKh / AUC metrics and model evaluation with flip and multi-scale test.

Metrics (each its own class, as in MMPose):

* :class:`PCK` -- LSP protocol: a joint is correct when its error is at most ``threshold`` (0.2) x the torso
  (distance left shoulder - right hip, the ``norm`` of LSP/LSPET records). Invisible joints and people without a
  valid normaliser are excluded. ``mean`` is the average of the per-joint values (equal weight per joint).
* :class:`PCKh` -- MPII protocol: threshold 0.5 x the head size (0.6 x head-box diagonal, the ``norm`` of MPII
  records). ``mean`` pools all visible joints except pelvis and thorax (the MPII evaluation code's weighted mean).
* :func:`auc` -- area under the PCK curve for thresholds evenly spaced in ``[0, max_threshold]``, normalised to
  100.

Predictions come from a :class:`~posedistill.inference.network.PoseNetwork`, the network of inference: flip and
multi-scale test are its test-time averaging (:func:`posedistill.inference.network.predict_heatmaps`), so
``evaluate``, the training loop's validation and ``predict --flip`` average the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .data import PoseDataset, build_loader
from .data.splits import joint_set_for, read_split
from .errors import CheckpointError
from .inference.network import PoseNetwork
from .io import atomic_write_json
from .provenance import invocation
from .skeleton import JointSet, get_joint_set

__all__ = ["joint_errors", "PCK", "PCKh", "PairedPCK", "auc", "predict_dataset", "evaluate_predictions",
           "EvalResult", "evaluate_checkpoint", "write_evaluation", "MULTI_SCALES"]


def joint_errors(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Normalised errors ``|pred - gt| / norm`` (N, K); NaN where the joint is invisible or norm invalid."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    norm = np.asarray(norm, np.float64).reshape(-1)
    valid = (np.asarray(visible) > 0) & (np.isfinite(norm) & (norm > 0))[:, None]
    dist = np.linalg.norm(pred - gt, axis=-1) / np.where(norm > 0, norm, 1.0)[:, None]
    return np.where(valid, dist, np.nan)


def _per_joint(err: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per joint: number of valid errors, number within ``threshold``, and their percentage (NaN if none)."""
    count = np.sum(np.isfinite(err), axis=0)
    hits = np.sum(np.nan_to_num(err, nan=np.inf) <= threshold, axis=0)
    per_joint = np.where(count > 0, 100.0 * hits / np.maximum(count, 1), np.nan)
    return count, hits, per_joint


def _mean_over_joints(count: np.ndarray, per_joint: np.ndarray) -> float:
    """PCK's ``mean``: the mean of the per-joint values of the joints with scored people (NaN if none)."""
    return float(np.nanmean(per_joint)) if np.any(count > 0) else float("nan")


@dataclass
class PCK:
    """Percentage of Correct Keypoints at ``threshold`` x normaliser (LSP: torso), in percent."""

    threshold: float = 0.2

    def __call__(self, pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray) -> dict[str, Any]:
        count, hits, per_joint = _per_joint(joint_errors(pred, gt, visible, norm), self.threshold)
        return {"mean": _mean_over_joints(count, per_joint), "per_joint": per_joint.tolist(), "count": count.tolist()}


class PairedPCK:
    """PCK of several predictions of the same people, and the paired bootstrap standard error of their
    differences (people resampled with replacement, the same resamples for every prediction).

    Example::

        paired = PairedPCK(gt, visible, norm)
        diff, se = paired.difference(pred_a, pred_b)     # PCK(a) - PCK(b) and its standard error
    """

    def __init__(self, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray, *, threshold: float = 0.2,
                 resamples: int = 1000, seed: int = 0) -> None:
        self.gt, self.visible, self.norm, self.threshold = gt, visible, norm, threshold
        rng = np.random.default_rng(seed)
        self.samples = [rng.integers(0, len(gt), len(gt)) for _ in range(resamples)]

    def errors(self, pred: np.ndarray) -> np.ndarray:
        """(N, K) normalised errors of ``pred`` (:func:`joint_errors`; NaN where a joint is not scored)."""
        return joint_errors(pred, self.gt, self.visible, self.norm)

    def pck_of(self, errors: np.ndarray, rows: np.ndarray | slice = slice(None)) -> float:
        """:class:`PCK`'s ``mean`` of the people ``rows`` of :meth:`errors`."""
        count, _, per_joint = _per_joint(errors[rows], self.threshold)
        return _mean_over_joints(count, per_joint)

    def pck(self, pred: np.ndarray) -> float:
        return self.pck_of(self.errors(pred))

    def difference(self, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        """``PCK(a) - PCK(b)`` and its paired bootstrap standard error."""
        ea, eb = self.errors(a), self.errors(b)
        diffs = [self.pck_of(ea, rows) - self.pck_of(eb, rows) for rows in self.samples]
        return self.pck_of(ea) - self.pck_of(eb), float(np.std(diffs))


@dataclass
class PCKh:
    """PCKh at ``threshold`` x head size (MPII protocol), in percent; ``mean`` excludes ``exclude`` joints."""

    threshold: float = 0.5
    exclude: Sequence[int] = field(default_factory=lambda: (6, 7))  # MPII order: pelvis, thorax

    def __call__(self, pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray) -> dict[str, Any]:
        count, hits, per_joint = _per_joint(joint_errors(pred, gt, visible, norm), self.threshold)
        keep = np.ones(len(count), bool)
        keep[list(self.exclude)] = False
        total = count[keep].sum()
        mean = float(100.0 * hits[keep].sum() / total) if total else float("nan")
        return {"mean": mean, "per_joint": per_joint.tolist(), "count": count.tolist()}


def auc(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray, *,
        max_threshold: float = 0.5, steps: int = 51) -> float:
    """Area under the mean-PCK curve for thresholds in [0, max_threshold], in percent (100 = perfect)."""
    thresholds = np.linspace(0.0, max_threshold, steps)
    curve = [PCK(float(t))(pred, gt, visible, norm)["mean"] for t in thresholds]
    return float(np.trapezoid(curve, thresholds) / max_threshold)


def predict_dataset(
    network: PoseNetwork,
    loader: Iterable[dict[str, Any]],
    *,
    flip: bool = True,
    scales: Sequence[float] = (1.0,),
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Predict every sample of ``loader`` (batches of the dataset dict, crops made for ``network.meta``) in
    original image pixels, with the network's test-time averaging (``flip``, ``scales``) and decoding.

    Returns arrays ``pred (N,K,2), scores (N,K), gt (N,K,2), visible (N,K), norm (N), index (N)``.
    """
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("pred", "scores", "gt", "visible", "norm", "index")}
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        pred, scores = network.estimate(batch["image"], batch["matrix"].numpy(), flip=flip, scales=scales)
        out["pred"].append(pred)
        out["scores"].append(scores)
        out["gt"].append(batch["joints"].numpy())
        out["visible"].append(batch["visible"].numpy())
        out["norm"].append(batch["norm"].numpy().reshape(-1))
        out["index"].append(batch["index"].numpy().reshape(-1))
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}


@dataclass
class EvalResult:
    """Metrics of one evaluation: PCK@thr per joint and mean, AUC, optional PCKh."""

    joint_names: list[str]
    pck: dict[str, Any]
    auc: float
    threshold: float
    num_people: int
    pckh: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # what was evaluated and how (evaluate_checkpoint)
    predictions: dict[str, np.ndarray] | None = field(default=None, repr=False)  # predict_dataset's, when kept
    against: dict[str, Any] | None = None  # compare_with's paired difference against another model

    def to_dict(self) -> dict[str, Any]:
        d = {**self.settings, "joint_names": self.joint_names, "threshold": self.threshold, "num_people": self.num_people,
             "pck": self.pck, "auc": self.auc}
        if self.pckh is not None:
            d["pckh"] = self.pckh
        if self.against is not None:
            d["against"] = self.against
        return d

    def compare_with(self, other: EvalResult, *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
        """PCK of this result minus ``other``'s on the same people (both evaluated with ``keep_predictions``), with
        its paired bootstrap standard error (:class:`PairedPCK`); stored as :attr:`against` and returned."""
        mine, theirs = self.predictions, other.predictions
        if mine is None or theirs is None:
            raise ValueError("compare_with needs both results evaluated with keep_predictions=True")
        if mine["gt"].shape != theirs["gt"].shape or not np.allclose(mine["gt"], theirs["gt"], equal_nan=True):
            raise ValueError("compare_with needs two evaluations of the same people")
        paired = PairedPCK(mine["gt"], mine["visible"], mine["norm"], threshold=self.threshold,
                           resamples=resamples, seed=seed)
        diff, se = paired.difference(mine["pred"], theirs["pred"])
        self.against = {"checkpoint": other.settings.get("checkpoint"), "pck_mean": other.pck["mean"],
                        "difference": diff, "standard_error": se, "resamples": resamples}
        return self.against

    def table(self) -> str:
        """Per-joint table (percent)."""
        rows = [f"{'joint':<16}{'PCK@' + format(self.threshold, 'g'):>10}" + (f"{'PCKh@0.5':>10}" if self.pckh else "")]
        for j, name in enumerate(self.joint_names):
            line = f"{name:<16}{self.pck['per_joint'][j]:>10.1f}"
            if self.pckh:
                line += f"{self.pckh['per_joint'][j]:>10.1f}"
            rows.append(line)
        line = f"{'mean':<16}{self.pck['mean']:>10.1f}" + (f"{self.pckh['mean']:>10.1f}" if self.pckh else "")
        rows += [line, f"AUC (PCK 0-0.5): {self.auc:.1f}   people: {self.num_people}"]
        return "\n".join(rows)


def evaluate_predictions(pred: dict[str, np.ndarray], joint_set: JointSet, *, threshold: float = 0.2,
                         pckh: bool = False) -> EvalResult:
    """Metrics of :func:`predict_dataset` output."""
    args = (pred["pred"], pred["gt"], pred["visible"], pred["norm"])
    return EvalResult(
        joint_names=list(joint_set.names),
        pck=PCK(threshold)(*args),
        auc=auc(*args),
        threshold=threshold,
        num_people=int(len(pred["pred"])),
        pckh=PCKh(exclude=[joint_set.index(n) for n in ("pelvis", "thorax") if n in joint_set.names])(*args)
        if pckh else None,
    )


MULTI_SCALES = (0.8, 0.9, 1.0, 1.1, 1.2)


def evaluate_checkpoint(checkpoint, data_root, *, dataset: str = "lspet", split: str = "test", flip: bool = True,
                        multi_scale: bool = False, dark: bool | None = None, pckh: bool = False,
                        batch_size: int = 32, workers: int = 0, device: str = "cpu",
                        progress: bool = False, keep_predictions: bool = False) -> EvalResult:
    """Evaluate a checkpoint (``.pt``) or an exported ONNX model (``.onnx``, fp32 or int8, run by ONNX Runtime)
    on a dataset split through :meth:`PoseNetwork.load <posedistill.inference.network.PoseNetwork.load>` (BN
    folded, as inference runs it), with the model's own meta record (input size, stride, sigma). ``dark``: force
    DARK decoding on or off (None: the meta's). The result's ``settings`` hold every option and the meta values
    used; with ``keep_predictions`` its ``predictions`` are :func:`predict_dataset`'s (for paired comparisons,
    :class:`PairedPCK`)."""
    records = read_split(dataset, data_root, split)
    joint_set = get_joint_set(joint_set_for(dataset, records, where=str(data_root)))
    network = PoseNetwork.load(checkpoint, dark=dark, device=device)
    meta = network.meta
    if meta.joint_set != joint_set.name:
        raise CheckpointError(f"{checkpoint}: model is for joint set {meta.joint_set!r}, the data has "
                              f"{joint_set.name!r}")
    ds = PoseDataset(records, meta=meta, train=False)  # the crops the model was trained on and is run on
    loader = build_loader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    pred = predict_dataset(network, loader, flip=flip, scales=MULTI_SCALES if multi_scale else (1.0,),
                           progress=progress)
    result = evaluate_predictions(pred, joint_set, pckh=pckh)
    result.predictions = pred if keep_predictions else None
    result.settings = {"checkpoint": str(checkpoint), "data": str(data_root), "dataset": dataset, "split": split,
                       "flip": flip, "multi_scale": multi_scale, "dark": meta.decode == "dark", "pckh": pckh,
                       "input_size": meta.input_size, "stride": meta.stride, "sigma": meta.sigma}
    return result


EVAL_FORMAT = "posedistill-evaluation"


def write_evaluation(path: str | Path, result: Any, command: Sequence[str] | None) -> dict[str, Any]:
    """Write an :class:`EvalResult` (settings and metrics) with its invocation
    (:func:`posedistill.provenance.invocation`) as ``{"format": "posedistill-evaluation", "version": 1, **settings,
    **metrics, "invocation": ...}``; atomic. ``posedistill report`` reads these files."""
    record = {"format": EVAL_FORMAT, "version": 1, **result.to_dict(), "invocation": invocation(command)}
    atomic_write_json(path, record)
    return record
