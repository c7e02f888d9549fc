"""The model's pixel contract: one record of everything needed to turn image pixels into joints and back.

A :class:`ModelMeta` holds the input size, the heatmap stride (from the model), the Gaussian sigma the model
was trained with (DARK decoding blurs with it), the default decode method, the normalisation mean and std, the
box padding of a person crop and the joint set (name, joint names, flip pairs). It is written once, as a plain
dict, into checkpoints (key ``model_meta``) and ONNX files (metadata entry ``posedistill.model_meta``, JSON), and
read back by :func:`posedistill.models.loading.load_pose_model`, which inference and evaluation
(:class:`~posedistill.inference.network.PoseNetwork`), export and ``bench`` all use.

Files written before the record existed still load (:func:`meta_from_checkpoint`, :func:`meta_from_onnx`):
their sigma from the checkpoint's ``sigma`` key, the stride from the model, and the code's constants of that
time for the rest; a value that had to be guessed (no sigma at all) is announced in one line.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..codec import HeatmapCodec
from ..errors import CheckpointError, ConfigError
from ..skeleton import JointSet, get_joint_set

__all__ = ["ModelMeta", "BOX_PADDING", "IMAGE_MEAN", "IMAGE_STD", "DEFAULT_SIGMA", "DECODE_METHODS", "CHECKPOINT_KEY",
           "ONNX_KEY", "meta_from_checkpoint", "meta_from_onnx"]

#: Side of the square person crop as a multiple of the longer box side: the box padding of every dataset reader,
#: of training and of inference (each model's record carries its own, this is the default).
BOX_PADDING = 1.25
#: RGB mean and std (ImageNet, on [0, 1] pixel values) a model's input is standardised with (the record's default),
#: as float32 values: the very numbers every checkpoint and ONNX file written so far records.
IMAGE_MEAN = tuple(float(v) for v in np.array([0.485, 0.456, 0.406], dtype=np.float32))
IMAGE_STD = tuple(float(v) for v in np.array([0.229, 0.224, 0.225], dtype=np.float32))
DECODE_METHODS = ("quarter", "dark")
CHECKPOINT_KEY = "model_meta"
ONNX_KEY = "posedistill.model_meta"
DEFAULT_SIGMA = 2.0


@dataclass(frozen=True)
class ModelMeta:
    """How a model sees pixels. Build one with :meth:`for_model`; store it with :meth:`to_dict`."""

    arch: str
    joint_set: str
    joint_names: tuple[str, ...]
    flip_index: tuple[int, ...]
    input_size: int
    stride: int
    sigma: float = DEFAULT_SIGMA
    decode: str = "quarter"
    mean: tuple[float, ...] = IMAGE_MEAN
    std: tuple[float, ...] = IMAGE_STD
    box_padding: float = BOX_PADDING
    version: int = 1

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.input_size, int) and self.input_size > 0, "input_size must be a positive integer"),
            (isinstance(self.stride, int) and self.stride > 0 and self.input_size % self.stride == 0,
             "stride must be a positive divisor of input_size"),
            (self.sigma > 0, "sigma must be > 0"),
            (self.decode in DECODE_METHODS, f"decode must be one of {', '.join(DECODE_METHODS)}"),
            (len(self.mean) == 3 and len(self.std) == 3 and all(s > 0 for s in self.std),
             "mean and std must be 3 values (std > 0)"),
            (self.box_padding > 0, "box_padding must be > 0"),
            (len(self.joint_names) == len(self.flip_index), "joint_names and flip_index differ in length"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"model meta: {message}")

    @classmethod
    def for_model(cls, model: Any, *, arch: str, joint_set: str | JointSet, input_size: int,
                  sigma: float = DEFAULT_SIGMA, decode: str = "quarter") -> ModelMeta:
        """The record of ``model`` (its ``stride`` is read from the model) trained at ``input_size``, ``sigma``."""
        return cls.for_pixels(joint_set, input_size, stride=int(model.stride), sigma=sigma, decode=decode, arch=arch)

    @classmethod
    def for_pixels(cls, joint_set: str | JointSet, input_size: int, *, stride: int, sigma: float = DEFAULT_SIGMA,
                   decode: str = "quarter", arch: str = "") -> ModelMeta:
        """A record of how pixels are made for a model of ``stride`` at ``input_size`` (``arch`` empty where no
        model is named: a dataset shown by ``data show``, the training data of a teacher cache)."""
        js = get_joint_set(joint_set)
        return cls(arch=str(arch), joint_set=js.name, joint_names=tuple(js.names), flip_index=tuple(js.flip_index),
                   input_size=int(input_size), stride=int(stride), sigma=float(sigma), decode=decode)

    @property
    def joints(self) -> JointSet:
        return get_joint_set(self.joint_set)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def codec(self) -> HeatmapCodec:
        """The heatmap codec of this model (input size, stride and sigma)."""
        return HeatmapCodec(input_size=self.input_size, sigma=self.sigma, stride=self.stride)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-like values (for ``torch.load(weights_only=True)`` and ONNX metadata)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: Any, *, where: str) -> ModelMeta:
        """Inverse of :meth:`to_dict`; :class:`CheckpointError` naming ``where`` for a malformed record."""
        if not isinstance(data, Mapping):
            raise CheckpointError(f"{where}: malformed model meta (expected a mapping)")
        try:
            kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
            meta = cls(**kwargs)
        except (TypeError, ValueError, ConfigError) as exc:
            raise CheckpointError(f"{where}: malformed model meta ({str(exc).splitlines()[0]})") from None
        _check_joint_set(meta, where)
        return meta

    def to_onnx_props(self) -> dict[str, str]:
        """ONNX ``metadata_props``: the record as JSON, plus the flat keys older readers look for."""
        return {ONNX_KEY: json.dumps(self.to_dict()), "joint_set": self.joint_set, "arch": self.arch,
                "num_joints": str(self.num_joints), "sigma": str(self.sigma)}

    def with_input_size(self, input_size: int) -> ModelMeta:
        """This record for another input size (a fully convolutional model runs at any multiple of 64)."""
        return ModelMeta(**{**asdict(self), "input_size": int(input_size)})

    def with_decode(self, dark: bool | None) -> ModelMeta:
        """This record with the decode method forced (``dark`` True/False) or kept (None)."""
        if dark is None:
            return self
        return ModelMeta(**{**asdict(self), "decode": "dark" if dark else "quarter"})


def _check_joint_set(meta: ModelMeta, where: str) -> None:
    try:
        js = get_joint_set(meta.joint_set)
    except ConfigError:
        raise CheckpointError(f"{where}: weights declare unknown joint set {meta.joint_set!r}") from None
    if tuple(js.names) != meta.joint_names:
        raise CheckpointError(f"{where}: joint names in the model meta differ from joint set {js.name!r}")


def _notice(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def meta_from_checkpoint(ckpt: Mapping[str, Any], model: Any, *, where: str) -> ModelMeta:
    """The record of a loaded checkpoint: its ``model_meta``, or for an older file one rebuilt from its keys."""
    if CHECKPOINT_KEY in ckpt:
        meta = ModelMeta.from_dict(ckpt[CHECKPOINT_KEY], where=where)
        if meta.stride != int(model.stride) or meta.num_joints != int(ckpt["arch"]["num_joints"]):
            raise CheckpointError(f"{where}: model meta (stride {meta.stride}, {meta.num_joints} joints) does not "
                                  f"match the model (stride {model.stride}, {ckpt['arch']['num_joints']} joints)")
        return meta
    sigma = ckpt.get("sigma")
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
        _notice(f"{where}: checkpoint has no model meta and no sigma; decoding with sigma {DEFAULT_SIGMA}")
        sigma = DEFAULT_SIGMA
    try:
        meta = ModelMeta.for_model(model, arch=ckpt["arch"]["name"], joint_set=ckpt["joint_set"],
                                   input_size=int(ckpt["input_size"]), sigma=float(sigma))
    except ConfigError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    if meta.num_joints != int(ckpt["arch"]["num_joints"]):
        raise CheckpointError(f"{where}: model predicts {ckpt['arch']['num_joints']} joints but joint set "
                              f"{meta.joint_set!r} has {meta.num_joints}")
    return meta


def meta_from_onnx(props: Mapping[str, str], *, input_shape: list[Any], output_shape: list[Any],
                   where: str) -> ModelMeta:
    """The record of an ONNX model from its metadata, or for an older export from its flat keys and shapes."""
    if ONNX_KEY in props:
        try:
            data = json.loads(props[ONNX_KEY])
        except ValueError:
            raise CheckpointError(f"{where}: malformed model meta in the ONNX metadata") from None
        meta = ModelMeta.from_dict(data, where=where)
        if output_shape[1] != meta.num_joints:
            raise CheckpointError(f"{where}: model predicts {output_shape[1]} joints but its meta lists "
                                  f"{meta.num_joints}")
        return meta
    if "joint_set" not in props:
        raise CheckpointError(f"{where}: ONNX model has no joint_set metadata (export it with `posedistill export`)")
    size, heat = input_shape[2], output_shape[2]
    if not isinstance(size, int) or size <= 0:
        raise CheckpointError(f"{where}: cannot tell the model's input size ({size!r})")
    try:
        js = get_joint_set(props["joint_set"])
    except ConfigError:
        raise CheckpointError(f"{where}: weights declare unknown joint set {props['joint_set']!r}") from None
    k = output_shape[1]
    if not isinstance(k, int) or k != js.num_joints:
        raise CheckpointError(f"{where}: model predicts {k} joints but joint set {js.name!r} has {js.num_joints}")
    stride = size // heat if isinstance(heat, int) and heat > 0 else 4
    try:
        sigma = float(props["sigma"])
    except (KeyError, ValueError):
        _notice(f"{where}: ONNX model has no model meta and no sigma; decoding with sigma {DEFAULT_SIGMA}")
        sigma = DEFAULT_SIGMA
    try:
        return ModelMeta(arch=props.get("arch", "unknown"), joint_set=js.name, joint_names=tuple(js.names),
                         flip_index=tuple(js.flip_index), input_size=size, stride=stride, sigma=sigma)
    except ConfigError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
