import numpy as np
import pytest
import torch

from posedistill.codec import HeatmapCodec
from posedistill.evaluation import PCK, PCKh, PairedPCK, auc, joint_errors
from posedistill.inference.network import flip_heatmaps, predict_heatmaps
from posedistill.skeleton import LSP, MPII

from helpers import make_checkpoint, model_meta


def test_pck_hand_computed_with_invisible_and_unnormalisable_people():
    gt = np.zeros((3, 2, 2))
    pred = np.zeros((3, 2, 2))
    pred[0, 0] = [1.0, 0.0]   # error 1 / norm 10 = 0.1 -> correct
    pred[0, 1] = [3.0, 0.0]   # 0.3 -> wrong
    pred[1, 0] = [0.0, 2.0]   # 2 / 10 = 0.2 -> correct (<= threshold)
    pred[1, 1] = [50.0, 0.0]  # invisible -> excluded
    pred[2] = 100.0           # person without a valid norm -> excluded
    visible = np.array([[1, 1], [1, 0], [1, 1]])
    norm = np.array([10.0, 10.0, np.nan])
    res = PCK(0.2)(pred, gt, visible, norm)
    assert res["per_joint"] == pytest.approx([100.0, 0.0])
    assert res["count"] == [2, 1]
    assert res["mean"] == pytest.approx(50.0)  # mean of the per-joint values
    err = joint_errors(pred, gt, visible, norm)
    assert np.isnan(err[1, 1]) and np.isnan(err[2]).all() and err[0, 1] == pytest.approx(0.3)


def test_paired_pck_matches_pck_and_its_se_reflects_the_spread_of_the_difference():
    rng = np.random.default_rng(3)
    gt = rng.uniform(0, 100, (200, 4, 2))
    visible, norm = np.ones((200, 4)), np.full(200, 50.0)
    a = gt + rng.normal(0, 6, gt.shape)          # mostly within 0.2 x 50 = 10 px
    b = a.copy()
    b[:20] += 40.0                               # 20 people of b wrong everywhere
    paired = PairedPCK(gt, visible, norm, resamples=400)
    assert paired.pck(a) == pytest.approx(PCK(0.2)(a, gt, visible, norm)["mean"])
    diff, se = paired.difference(a, b)
    assert diff == pytest.approx(PCK(0.2)(a, gt, visible, norm)["mean"] - PCK(0.2)(b, gt, visible, norm)["mean"])
    assert 5.0 < diff < 11.0 and 1.0 < se < 3.5   # 20 of 200 people differ: binomial-like spread of the difference
    assert paired.difference(a, a) == (0.0, 0.0)  # identical predictions: no difference, no spread


def test_pckh_mean_excludes_pelvis_and_thorax_and_pools_joints():
    n = 2
    gt = np.zeros((n, 16, 2))
    pred = np.zeros((n, 16, 2))
    pred[:, 6] = 100.0  # pelvis wrong everywhere: excluded from the mean
    pred[:, 7] = 100.0  # thorax wrong everywhere: excluded
    pred[0, 0] = [10.0, 0.0]  # right ankle of person 0: 10 / 10 = 1.0 > 0.5 -> wrong
    visible = np.ones((n, 16))
    res = PCKh(0.5)(pred, gt, visible, np.array([10.0, 10.0]))
    assert res["per_joint"][6] == 0.0 and res["per_joint"][0] == 50.0
    assert res["mean"] == pytest.approx(100.0 * 27 / 28)


def test_auc_perfect_and_partial():
    gt = np.zeros((1, 1, 2))
    vis, norm = np.ones((1, 1)), np.array([1.0])
    assert auc(gt, gt, vis, norm) == pytest.approx(100.0)
    half = np.array([[[0.25, 0.0]]])  # correct for thresholds >= 0.25 of [0, 0.5]
    assert 45.0 < auc(half, gt, vis, norm, steps=101) < 55.0


def test_flip_heatmaps_swaps_left_and_right():
    hm = torch.zeros(1, LSP.num_joints, 8, 8)
    hm[0, LSP.index("right_wrist"), 2, 1] = 1.0
    out = flip_heatmaps(hm, LSP.flip_index)
    assert out[0, LSP.index("left_wrist"), 2, 6] == 1.0
    assert out.sum() == 1.0


class _Oracle(torch.nn.Module):
    """A 'model' that puts a Gaussian at fixed crop coordinates, mirrored when its input is mirrored."""

    def __init__(self, coords: np.ndarray, codec: HeatmapCodec):
        super().__init__()
        self.coords, self.codec = coords, codec

    def forward(self, x):
        w = x.shape[-1]
        mirrored = bool(x[0, 0, 0, 0] < x[0, 0, 0, -1])  # the test image is brighter on the left
        coords = self.coords.copy()
        if mirrored:
            coords[:, 0] = w - 1 - coords[:, 0]
            coords = coords[LSP.flip_index]
        hm, _ = self.codec.encode(coords, np.ones(len(coords)))
        return [torch.from_numpy(hm)[None].repeat(x.shape[0], 1, 1, 1)]


def test_flip_test_is_unbiased():
    codec = HeatmapCodec(input_size=64, sigma=1.5)
    rng = np.random.default_rng(0)
    coords = rng.uniform(8, 56, size=(LSP.num_joints, 2))
    image = torch.linspace(1, 0, 64).expand(1, 3, 64, 64).contiguous()
    model = _Oracle(coords, codec)
    single = codec.decode(predict_heatmaps(model, image).numpy(), dark=True)[0][0]
    flipped = codec.decode(predict_heatmaps(model, image, flip_index=LSP.flip_index).numpy(), dark=True)[0][0]
    # averaging with the mirrored view must not move the prediction (no half- or one-pixel drift)
    assert np.abs(flipped - single).max() < 0.05
    assert np.abs(flipped - coords).mean() < 0.5


class _PoolModel(torch.nn.Module):
    """Heatmaps = the input's first channel pooled to 1/4: zooming the input zooms its heatmaps."""

    def forward(self, x):
        return [torch.nn.functional.avg_pool2d(x[:, :1], 4).repeat(1, LSP.num_joints, 1, 1)]


def test_multi_scale_maps_heatmaps_back_onto_the_crop():
    codec = HeatmapCodec(input_size=128, sigma=2.0)
    blob, _ = HeatmapCodec(input_size=512, sigma=8.0).encode(np.array([[150.0, 210.0]]), np.ones(1))
    image = torch.from_numpy(blob).expand(1, 3, 128, 128).contiguous()  # a blob centred at (37.4, 52.4)
    model = _PoolModel()
    base = codec.decode(predict_heatmaps(model, image).numpy(), dark=True)[0][0, 0]
    multi = codec.decode(predict_heatmaps(model, image, scales=(0.8, 0.9, 1.0, 1.1, 1.2)).numpy(), dark=True)[0][0, 0]
    assert np.abs(multi - base).max() < 0.5
    assert torch.allclose(predict_heatmaps(model, image, scales=(1.0, 1.0)), predict_heatmaps(model, image))


def test_mpii_names_for_pckh_exclusion():
    assert MPII.names[6] == "pelvis" and MPII.names[7] == "thorax"


def test_evaluate_checkpoint_torch_and_onnx_agree(tmp_path):
    """evaluate on real embedded LSPET images: a .pt checkpoint and its ONNX export give the same PCK."""
    from posedistill.evaluation import evaluate_checkpoint
    from posedistill.deploy.onnx import export_onnx
    from posedistill.models import build_model
    from posedistill.quickstart import embedded_data_dir

    torch.manual_seed(0)
    model = build_model("hg1_32").eval()
    make_checkpoint(tmp_path / "m.pt", model, model_meta(model, "hg1_32", 64))
    export_onnx(model, tmp_path / "m.onnx", input_size=64,
                metadata={"joint_set": "lsp", "arch": "hg1_32", "num_joints": "14", "input_size": "64"})
    kw = dict(dataset="lspet", split="501-540", flip=True)
    a = evaluate_checkpoint(tmp_path / "m.pt", embedded_data_dir(), **kw)
    b = evaluate_checkpoint(tmp_path / "m.onnx", embedded_data_dir(), **kw)
    assert a.num_people == b.num_people > 0
    assert a.pck["mean"] == pytest.approx(b.pck["mean"], abs=1.0)
    assert len(a.pck["per_joint"]) == 14


def test_evaluate_against_prints_the_paired_difference_and_writes_it(tmp_path):
    """``evaluate A --against B`` on real embedded LSPET images: the difference is PCK(A) - PCK(B) on the same
    people with a bootstrap standard error; against itself it is exactly 0 with no spread."""
    import json

    from click.testing import CliRunner

    from posedistill.cli import main
    from posedistill.models import build_model
    from posedistill.quickstart import embedded_data_dir

    for seed, name in ((0, "a.pt"), (1, "b.pt")):
        torch.manual_seed(seed)
        model = build_model("hg1_32").eval()
        make_checkpoint(tmp_path / name, model, model_meta(model, "hg1_32", 64))
    args = ["evaluate", str(tmp_path / "a.pt"), "--data", str(embedded_data_dir()), "--split", "501-540",
            "--workers", "0", "--no-flip"]
    res = CliRunner().invoke(main, [*args, "--against", str(tmp_path / "b.pt"), "--json", str(tmp_path / "ab.json")])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "ab.json").read_text())
    got = record["against"]
    assert got["difference"] == pytest.approx(record["pck"]["mean"] - got["pck_mean"])
    assert got["standard_error"] > 0
    assert f"minus {tmp_path / 'b.pt'}: {got['difference']:+.1f}" in res.output
    res = CliRunner().invoke(main, [*args, "--against", str(tmp_path / "a.pt"), "--json", str(tmp_path / "aa.json")])
    same = json.loads((tmp_path / "aa.json").read_text())["against"]
    assert same["difference"] == 0 and same["standard_error"] == 0
