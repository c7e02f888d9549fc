import pytest

from posedistill.errors import ConfigError
from posedistill.skeleton import COCO, LSP, MPII, get_joint_set


@pytest.mark.parametrize("jset,k", [(LSP, 14), (MPII, 16), (COCO, 17)])
def test_sizes_and_flip_index_swaps_left_and_right(jset, k):
    assert jset.num_joints == k and len(jset.names) == k
    perm = jset.flip_index
    assert sorted(perm) == list(range(k))
    assert [perm[p] for p in perm] == list(range(k))  # an involution
    for j, name in enumerate(jset.names):
        other = jset.names[perm[j]]
        if name.startswith("left_"):
            assert other == "right_" + name[5:]
        elif name.startswith("right_"):
            assert other == "left_" + name[6:]
        else:
            assert other == name


def test_documented_orders():
    assert LSP.names[0] == "right_ankle" and LSP.names[9] == "left_shoulder" and LSP.names[2] == "right_hip"
    assert LSP.names[12:] == ("neck", "head_top")
    assert MPII.names[6:10] == ("pelvis", "thorax", "neck", "head_top") and MPII.names[15] == "left_wrist"
    assert COCO.names[0] == "nose" and COCO.names[16] == "right_ankle"
    assert sorted(LSP.flip_pairs) == [(3, 2), (4, 1), (5, 0), (9, 8), (10, 7), (11, 6)]


def test_limbs_in_range_and_sides():
    for jset in (LSP, MPII, COCO):
        assert all(0 <= a < jset.num_joints and 0 <= b < jset.num_joints for a, b in jset.limbs)
    assert LSP.limb_side((LSP.index("left_knee"), LSP.index("left_ankle"))) == "left"
    assert LSP.limb_side((LSP.index("right_hip"), LSP.index("left_hip"))) == "centre"


def test_get_joint_set_and_errors():
    assert get_joint_set("LSP") is LSP and get_joint_set("lspet") is LSP and get_joint_set(MPII) is MPII
    with pytest.raises(ConfigError, match="lsp.*mpii.*coco"):
        get_joint_set("h36m")
    with pytest.raises(ConfigError, match="left_wrist"):
        LSP.index("left_hand")
