import cv2
import numpy as np
from click.testing import CliRunner

from posedistill.cli import main
from posedistill.cli.data_cmd import SIDE_COLOURS, render_sample
from posedistill.codec import HeatmapCodec
from posedistill.data import AugmentConfig, PoseDataset, read_lspet
from posedistill.skeleton import LSP

from helpers import pixels


def test_data_show_writes_panel(lspet_mini, tmp_path):
    out = tmp_path / "s.png"
    res = CliRunner().invoke(main, ["data", "show", str(lspet_mini), "--dataset", "lspet", "--index", "2",
                                    "--input-size", "128", "--out", str(out)])
    assert res.exit_code == 0, res.output
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] > 2 * img.shape[0] - 80  # crop beside heatmap


def test_data_show_errors_are_one_line(lspet_mini, tmp_path):
    res = CliRunner().invoke(main, ["data", "show", str(lspet_mini), "--dataset", "lsp", "--out",
                                    str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "read it as 'lspet'" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["data", "show", str(lspet_mini), "--dataset", "lspet", "--index", "9",
                                    "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "--index 9 out of range" in res.output


def _colour_at(panel, p, scale):
    y0 = 28  # title bar
    x, y = (np.asarray(p) + 0.5) * scale - 0.5
    return panel[int(round(y)) + y0, int(round(x))].astype(int)


def test_left_limbs_blue_right_limbs_red_also_when_flipped(lspet_mini):
    recs = read_lspet(lspet_mini)
    cfg = AugmentConfig(scale_factor=0, rotation=0, color_jitter=0)
    ds = PoseDataset(recs, meta=pixels(input_size=128), train=True, augment=cfg)
    codec = HeatmapCodec(input_size=128)
    for epoch in range(4):
        sample = ds[(epoch, 1)]
        panel = render_sample(sample, ds.meta)
        pts = codec.decode(sample["target"].numpy(), dark=True)[0]
        for side in ("left", "right"):
            j = LSP.index(f"{side}_ankle")
            if sample["target_weight"][j] > 0:  # the dot on joint j is drawn in its side's colour
                np.testing.assert_array_equal(_colour_at(panel, pts[j], 4), SIDE_COLOURS[side])
