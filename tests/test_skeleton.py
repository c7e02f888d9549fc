import numpy as np
import pytest

from posedistill.errors import ConfigError
from posedistill.skeleton import COCO, LSP, LSP_TO_MPII, MPII, get_joint_set, lsp_to_mpii, mpii_to_lsp


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


def test_lsp_mpii_round_trip():
    rng = np.random.default_rng(0)
    j = rng.uniform(0, 100, (3, 14, 2))
    v = (rng.random((3, 14)) > 0.2).astype(np.float32)
    jm, vm = lsp_to_mpii(j, v)
    assert jm.shape == (3, 16, 2)
    np.testing.assert_allclose(jm[:, list(LSP_TO_MPII)], j)
    np.testing.assert_allclose(jm[:, MPII.index("pelvis")], (j[:, 2] + j[:, 3]) / 2)
    np.testing.assert_array_equal(vm[:, MPII.index("thorax")], np.minimum(v[:, 8], v[:, 9]))
    back, vb = mpii_to_lsp(jm, vm)
    np.testing.assert_allclose(back, j)
    np.testing.assert_array_equal(vb, v)
    with pytest.raises(ConfigError):
        lsp_to_mpii(np.zeros((16, 2)), np.zeros(16))
