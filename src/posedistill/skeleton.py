"""Joint sets: joint names, left/right flip pairs and limbs of LSP (14), MPII (16) and COCO (17).

Joint names are snake_case and shared between sets where the joint is the same (``right_ankle``,
``left_wrist``, ``neck``, ``head_top``, ...). Left and right are
person-centric (the person's own left), as in all three datasets.

LSP / LSP extended (``LSP``, 14 joints)::

    idx  name             idx  name
    0    right_ankle      7    right_elbow
    1    right_knee       8    right_shoulder
    2    right_hip        9    left_shoulder
    3    left_hip         10   left_elbow
    4    left_knee        11   left_wrist
    5    left_ankle       12   neck
    6    right_wrist      13   head_top

MPII (``MPII``, 16 joints; ``neck`` is MPII's "upper neck")::

    idx  name             idx  name
    0    right_ankle      8    neck
    1    right_knee       9    head_top
    2    right_hip        10   right_wrist
    3    left_hip         11   right_elbow
    4    left_knee        12   right_shoulder
    5    left_ankle       13   left_shoulder
    6    pelvis           14   left_elbow
    7    thorax           15   left_wrist

COCO (``COCO``, 17 joints)::

    idx  name             idx  name
    0    nose             9    left_wrist
    1    left_eye         10   right_wrist
    2    right_eye        11   left_hip
    3    left_ear         12   right_hip
    4    right_ear        13   left_knee
    5    left_shoulder    14   right_knee
    6    right_shoulder   15   left_ankle
    7    left_elbow       16   right_ankle
    8    right_elbow
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

__all__ = [
    "JointSet", "LSP", "MPII", "COCO", "JOINT_SETS", "get_joint_set",
]


@dataclass(frozen=True)
class JointSet:
    """An ordered set of named joints with its horizontal-flip pairs and skeleton limbs.

    Attributes:
        name: short lower-case name (``"lsp"``, ``"mpii"``, ``"coco"``).
        names: joint names in dataset order.
        flip_pairs: (left, right) index pairs swapped by a horizontal flip.
        limbs: (a, b) index pairs joined when drawing the skeleton.
    """

    name: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    limbs: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        k = len(self.names)
        if len(set(self.names)) != k:
            raise ValueError(f"joint set {self.name}: duplicate joint names")
        for a, b in (*self.flip_pairs, *self.limbs):
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"joint set {self.name}: index pair ({a}, {b}) out of range 0..{k - 1}")

    @property
    def num_joints(self) -> int:
        """Number of joints K."""
        return len(self.names)

    @property
    def flip_index(self) -> list[int]:
        """Permutation so that ``flipped[..., j] = x[..., flip_index[j]]`` swaps left and right joints."""
        perm = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def index(self, name: str) -> int:
        """Index of the joint called ``name``; raises ConfigError listing the valid names."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(
                f"joint set {self.name!r} has no joint {name!r}; valid names: {', '.join(self.names)}"
            ) from None

    @property
    def lower_body(self) -> tuple[int, ...]:
        """Indices of the hips, knees, ankles and pelvis (the rest is the upper body; half-body crops)."""
        return tuple(j for j, n in enumerate(self.names) if n.endswith(("_hip", "_knee", "_ankle")) or n == "pelvis")

    def side(self, j: int) -> str:
        """``"left"``, ``"right"`` or ``"centre"`` for joint ``j`` (from its name)."""
        n = self.names[j]
        return "left" if n.startswith("left_") else "right" if n.startswith("right_") else "centre"

    def limb_side(self, limb: tuple[int, int]) -> str:
        """``"left"``/``"right"`` when both ends of the limb are on that side, else ``"centre"``."""
        a, b = (self.side(j) for j in limb)
        return a if a == b else "centre"


def _pairs_by_name(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Flip pairs (left_x, right_x) found by name."""
    return tuple(
        (i, names.index("right_" + n[5:])) for i, n in enumerate(names) if n.startswith("left_")
    )


def _limbs(names: tuple[str, ...], pairs: list[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    return tuple((names.index(a), names.index(b)) for a, b in pairs)


_LSP_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
    "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top",
)
_MPII_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
    "neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist",
)
_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle",
)
_ARMS_LEGS = [
    ("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("left_ankle", "left_knee"),
    ("left_knee", "left_hip"), ("right_wrist", "right_elbow"), ("right_elbow", "right_shoulder"),
    ("left_wrist", "left_elbow"), ("left_elbow", "left_shoulder"), ("right_hip", "left_hip"),
    ("right_shoulder", "left_shoulder"),
]

LSP = JointSet(
    "lsp", _LSP_NAMES, _pairs_by_name(_LSP_NAMES),
    _limbs(_LSP_NAMES, _ARMS_LEGS + [("right_hip", "right_shoulder"), ("left_hip", "left_shoulder"),
                                     ("neck", "head_top"), ("right_shoulder", "neck"), ("left_shoulder", "neck")]),
)
MPII = JointSet(
    "mpii", _MPII_NAMES, _pairs_by_name(_MPII_NAMES),
    _limbs(_MPII_NAMES, _ARMS_LEGS[:8] + [("right_hip", "pelvis"), ("left_hip", "pelvis"), ("pelvis", "thorax"),
                                          ("thorax", "neck"), ("neck", "head_top"), ("thorax", "right_shoulder"),
                                          ("thorax", "left_shoulder")]),
)
COCO = JointSet(
    "coco", _COCO_NAMES, _pairs_by_name(_COCO_NAMES),
    _limbs(_COCO_NAMES, _ARMS_LEGS + [("right_hip", "right_shoulder"), ("left_hip", "left_shoulder"),
                                      ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
                                      ("right_eye", "right_ear"), ("left_ear", "left_shoulder"),
                                      ("right_ear", "right_shoulder")]),
)

JOINT_SETS: dict[str, JointSet] = {"lsp": LSP, "lspet": LSP, "mpii": MPII, "coco": COCO}


def get_joint_set(name: str | JointSet) -> JointSet:
    """The joint set called ``name`` (case-insensitive; ``"lspet"`` is LSP); a JointSet is returned as is."""
    if isinstance(name, JointSet):
        return name
    try:
        return JOINT_SETS[str(name).lower()]
    except KeyError:
        raise ConfigError(f"unknown joint set {name!r}; valid names: {', '.join(JOINT_SETS)}") from None
