"""Issue 14: person localisation without a box, video tracking and One Euro smoothing, the predict pipeline.

A stub "network" that sees a bright rectangle makes the localiser's and tracker's logic testable exactly: its
joints span the bright pixels inside the crop and its confidence is the bright share of the crop.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posedistill.cli import main
from posedistill.codec import invert_affine
from posedistill.data.transforms import crop_person
from posedistill.errors import ConfigError
from posedistill.data.records import box_to_square
from posedistill.inference.predictor import Predictor
from posedistill.inference.localize import Localizer, box_iou, joints_box, window_boxes
from posedistill.inference.timing import StageTimes
from posedistill.inference.pipeline import predict_paths
from posedistill.inference.result import PoseResult
from posedistill.skeleton import LSP
from posedistill.inference.tracking import OneEuroFilter, PoseTracker, TrackingConfig


class BrightStub:
    """PoseNetwork stand-in: 14 joints on the bright (> 128) pixels of the crop (the first 4 at its corners, a bit
    more confident), confidence = their share of the crop."""

    input_size = 64
    joints = LSP
    weights = None  # no person scorer beside it
    meta = SimpleNamespace(num_joints=14, box_padding=1.25)

    def preprocess(self, image, box):
        centre, side = box_to_square(box)
        crop, matrix = crop_person(image, centre, side, 0.0, self.input_size)
        return crop.astype(np.float32), matrix

    def heatmaps(self, crops, *, flip=False):
        return crops  # the "heatmaps" are the crops themselves: decode_heatmaps reads the bright pixels

    def decode_heatmaps(self, crops, matrices):
        pts, scores = [], []
        for crop, m in zip(crops, matrices):
            ys, xs = np.nonzero(crop[:, :, 0] > 128)
            if len(xs) == 0:
                pts.append(np.full((14, 2), self.input_size / 2.0)), scores.append(np.zeros(14))
                continue
            gx = np.r_[0, 1, 0, 1, np.linspace(0, 1, 10)]
            gy = np.r_[0, 0, 1, 1, np.linspace(1, 0, 10)]
            local = np.stack([xs.min() + gx * (xs.max() - xs.min()), ys.min() + gy * (ys.max() - ys.min())], 1)
            inv = invert_affine(m)
            pts.append(local @ inv[:, :2].T + inv[:, 2])
            scores.append(len(xs) / crop[:, :, 0].size + np.r_[np.full(4, 0.01), np.zeros(10)])
        return np.array(pts), np.array(scores)


def _stub_predictor(**kw):
    return Predictor.from_network(BrightStub(), locate="pose", **kw)


def _scene(x, y, w, h, size=(480, 640)):
    img = np.zeros((*size, 3), np.uint8)
    cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), (255, 255, 255), -1)
    return img


def test_box_helpers():
    assert box_iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 1, 1], [5, 5, 1, 1]) == 0.0
    pts = np.array([[0, 0], [10, 20], [100, 100]], float)
    assert joints_box(pts, np.array([1.0, 1.0, 0.0]), keep=2, margin=1.0) == [0.0, 0.0, 10.0, 20.0]
    boxes = window_boxes(640, 480, (0.5,))
    assert boxes[0] == [0.0, 0.0, 640.0, 480.0]
    xs = sorted({b[0] for b in boxes[1:]})
    assert xs[0] == 0.0 and xs[-1] + 320 == pytest.approx(640) and len(boxes) == 1 + len(xs) * 2


@pytest.mark.parametrize("where", [(60, 50, 80, 160), (420, 250, 90, 180)])
def test_localizer_finds_the_bright_person_and_refines_to_a_fixed_point(where):
    image = _scene(*where)
    loc = Localizer(BrightStub(), method="pose", refine_steps=2)
    person = loc.locate(image)
    assert len(person) == 1 and box_iou(person.boxes[0], list(where)) > 0.6, person.boxes
    # no scorer: the ranking score is confidence x stability, and the joints span (nearly) the same box again
    stability = person.person_scores[0] / person.scores[0].mean()
    assert stability > 0.9


def test_final_scales_try_each_kept_candidate_at_other_sizes():
    image = _scene(200, 100, 80, 160)
    plain = Localizer(BrightStub(), method="pose", top_k=3)
    plain.locate(image)
    scaled = Localizer(BrightStub(), method="pose", top_k=3, final_scales=(0.8, 1.0, 1.25))
    person = scaled.locate(image)
    assert scaled.stats["forward_crops"] == plain.stats["forward_crops"] + 3 * 2  # 2 more crops per kept one
    assert box_iou(person.boxes[0], [200, 100, 80, 160]) > 0.6


def test_localizer_max_people_returns_distinct_people():
    image = _scene(40, 40, 80, 160)
    cv2.rectangle(image, (450, 200), (530, 360), (255, 255, 255), -1)
    one = Localizer(BrightStub(), method="pose").locate(image)
    two = Localizer(BrightStub(), method="pose", max_people=2, top_k=6, min_relative_score=0.3).locate(image)
    assert len(one) == 1 and len(two) == 2
    assert box_iou(two.boxes[0], two.boxes[1]) == 0.0
    assert two.person_scores[0] >= two.person_scores[1]  # best first


def test_hog_method_runs_on_a_real_photo(lspet_mini):
    image = cv2.imread(str(sorted((lspet_mini / "images").glob("*.jpg"))[0]))
    canvas = cv2.copyMakeBorder(image, 100, 100, 200, 200, cv2.BORDER_CONSTANT, value=(90, 120, 90))
    people = Localizer(BrightStub(), method="hog").locate(canvas)
    assert len(people) == 1 and people.keypoints.shape == (1, 14, 2)


def test_one_euro_filter_steadies_a_still_point_and_follows_a_moving_one():
    rng = np.random.default_rng(0)
    still = 100 + rng.normal(0, 2.0, size=(200, 1, 2))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    out = np.array([f(x, t / 25) for t, x in enumerate(still)])
    assert out[50:].std() < still[50:].std() / 3
    ramp = np.arange(100, dtype=float)[:, None, None] * np.array([[4.0, 0.0]])  # 4 px per frame
    lag = {}
    for beta in (0.0, 5.0):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        lag[beta] = float(np.abs(np.array([f(x, t / 25, scale=100) for t, x in enumerate(ramp)])[-1] - ramp[-1]).max())
    assert lag[5.0] < lag[0.0] / 2
    f.reset()
    assert np.array_equal(f(np.ones((1, 2)), 0.0), np.ones((1, 2)))


def test_tracker_follows_a_moving_person_without_relocalising():
    tracker = PoseTracker(_stub_predictor(), TrackingConfig(smooth=False, relocalize_below=0.01))
    for t in range(30):
        x = 100 + 8 * t
        person = tracker.update(_scene(x, 150, 60, 140), t / 25)
        assert len(person) == 1 and box_iou(person.boxes[0], [x, 150, 60, 140]) > 0.5
    assert tracker.relocalized == 1  # only the first frame
    untracked = PoseTracker(_stub_predictor(), TrackingConfig(track=False, smooth=False))
    for t in range(3):
        untracked.update(_scene(100, 150, 60, 140), t / 25)
    assert untracked.relocalized == 3


def test_tracker_relocalises_when_the_person_is_lost():
    tracker = PoseTracker(_stub_predictor(), TrackingConfig(smooth=False, relocalize_below=0.05))
    tracker.update(_scene(100, 150, 60, 140), 0.0)
    person = tracker.update(_scene(500, 250, 60, 140), 0.04)  # jumped far away: the tracked box sees nothing
    assert tracker.relocalized == 2 and box_iou(person.boxes[0], [500, 250, 60, 140]) > 0.5


def test_tracker_needs_a_box_or_a_predictor_that_localises():
    with pytest.raises(ConfigError, match="localises"):
        PoseTracker(Predictor.from_network(BrightStub(), locate="none"))
    fixed = PoseTracker(Predictor.from_network(BrightStub(), locate="none"), box=[100, 150, 60, 140])
    assert box_iou(fixed.update(_scene(100, 150, 60, 140), 0.0).boxes[0], [100, 150, 60, 140]) == 1.0


def test_tracker_follows_a_box_reaching_far_out_of_a_small_frame():
    """The tracker's own box (from the last joints) may reach further out of the frame than a given box may
    (check_box refuses those): it is cropped as it is, not refused."""
    tracker = PoseTracker(_stub_predictor(), TrackingConfig(smooth=False, relocalize_below=0.0))
    frame = _scene(10, 10, 40, 40, size=(64, 64))
    tracker.update(frame, 0.0)
    far = np.tile([[-100.0, -40.0], [150.0, 120.0]], (7, 1))  # joints spanning well beyond the 64 x 64 frame
    tracker._last = PoseResult([[0, 0, 64, 64]], far[None], np.ones((1, 14)), LSP)
    person = tracker.update(frame, 0.04)
    assert len(person) == 1 and person.boxes[0][0] < -64 and tracker.relocalized == 1


def _two_people(t):
    image = _scene(100, 150, 60, 140)  # A: a thin person, there from the first frame
    if t >= 5:  # B: a more confident (squarer) person elsewhere, from frame 5
        cv2.rectangle(image, (450, 250), (570, 370), (255, 255, 255), -1)
    return image


@pytest.mark.parametrize("recheck_every,margin,ends_on_b", [(0, 0.0, False), (5, 0.0, True), (5, 10.0, False)])
def test_tracker_rechecks_the_whole_frame_and_moves_to_a_better_person(recheck_every, margin, ends_on_b):
    tracker = PoseTracker(_stub_predictor(), TrackingConfig(smooth=False, relocalize_below=0.05,
                                                            recheck_every=recheck_every, recheck_margin=margin))
    people = [tracker.update(_two_people(t), t / 25) for t in range(16)]
    assert box_iou(people[4].boxes[0], [100, 150, 60, 140]) > 0.5  # locked on A before B appears
    on_b = box_iou(people[-1].boxes[0], [450, 250, 120, 120]) > 0.5
    assert on_b == ends_on_b
    assert tracker.switched == int(ends_on_b) and tracker.relocalized == 1


def test_recheck_every_must_not_be_negative():
    with pytest.raises(ConfigError, match="recheck_every"):
        TrackingConfig(recheck_every=-1)


@pytest.fixture(scope="module")
def student():
    return Predictor(threads=1)  # the shipped weights


def _canvas_with_photo(lspet_mini, tmp_path):
    photo = cv2.imread(str(sorted((lspet_mini / "images").glob("*.jpg"))[0]))
    h, w = photo.shape[:2]
    canvas = np.full((h * 2, w * 2, 3), (60, 110, 160), np.uint8)
    canvas[h // 2:h // 2 + h, w // 3:w // 3 + w] = photo
    path = tmp_path / "canvas.jpg"
    cv2.imwrite(str(path), canvas)
    return path, canvas.shape


def test_predict_cli_localises_without_a_box_and_none_keeps_the_whole_image(lspet_mini, tmp_path):
    path, (ch, cw, _) = _canvas_with_photo(lspet_mini, tmp_path)
    runner = CliRunner()
    auto = runner.invoke(main, ["predict", str(path), "--no-progress", "-o", str(tmp_path / "a.json")])
    whole = runner.invoke(main, ["predict", str(path), "--no-progress", "--locate", "none",
                                 "-o", str(tmp_path / "w.json")])
    assert auto.exit_code == 0 and whole.exit_code == 0, auto.output + whole.output
    (a,), (w,) = json.loads((tmp_path / "a.json").read_text()), json.loads((tmp_path / "w.json").read_text())
    assert w["bbox"] == [0.0, 0.0, float(cw), float(ch)]
    assert max(a["bbox"][2:]) < 0.8 * max(cw, ch)  # a person-sized box, not the canvas


def test_pipeline_gives_the_same_records_with_any_number_of_workers_and_times_its_stages(student, lspet_mini):
    images = sorted((lspet_mini / "images").glob("*.jpg"))
    box = [10.0, 10.0, 100.0, 150.0]
    times = StageTimes()
    one = predict_paths(student, images, bbox=box, workers=1, batch_size=2, progress=False)
    many = predict_paths(student, images, bbox=box, workers=3, batch_size=2, progress=False, timings=times)
    assert one == many and [r["image"] for r in one] == [str(p) for p in images]
    direct = student(cv2.imread(str(images[1])), [box]).to_records()[0]  # batch of 1: floats may differ in the last bits
    for got, want in zip(many[1]["keypoints"], direct["keypoints"]):
        assert got["x"] == pytest.approx(want["x"], abs=1e-3) and got["score"] == pytest.approx(want["score"], abs=1e-4)
    assert times.images == len(images) and times.decode > 0 and times.crop > 0 and times.infer > 0


def _moving_video(path, photo, frames=12):
    h, w = photo.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w * 2, h * 2))
    for t in range(frames):
        canvas = np.full((h * 2, w * 2, 3), (60, 110, 160), np.uint8)
        x = 10 + 6 * t
        canvas[h // 2:h // 2 + h, x:x + w] = photo
        writer.write(canvas)
    writer.release()
    return path


def test_predict_video_tracks_and_smooths(student, lspet_mini, tmp_path):
    photo = cv2.imread(str(sorted((lspet_mini / "images").glob("*.jpg"))[0]))
    video = _moving_video(tmp_path / "clip.mp4", photo)
    one = Predictor.from_network(student.network)
    tracked = predict_paths(one, [video], progress=False, draw_dir=tmp_path / "d")
    calls_tracked = one.localizer.stats["forward_crops"]
    two = Predictor.from_network(student.network)
    untracked = predict_paths(two, [video], progress=False, tracking=TrackingConfig(track=False, smooth=False))
    assert [r["frame"] for r in tracked] == list(range(12)) == [r["frame"] for r in untracked]
    assert two.localizer.stats["forward_crops"] > 3 * calls_tracked  # localising every frame costs far more
    assert (tmp_path / "d" / "clip.mp4").stat().st_size > 0


def test_predict_refuses_a_png_declaring_60000_pixels_square_in_one_line(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    path = tmp_path / "huge.png"
    path.write_bytes(png)
    res = CliRunner().invoke(main, ["predict", str(path), "--no-progress"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith("error: ") and "60000 x 60000" in res.output
    assert "Traceback" not in res.output


def test_pipeline_decodes_with_the_models_own_codec(lspet_mini, tmp_path):
    """predict's pipeline and the Predictor call give the same DARK keypoints for a model whose sigma is not the
    codec default 2 (the pipeline once decoded with a codec of its own, at sigma 2: 13 px away on a real photo
    with the shipped sigma-1.5 weights)."""
    from posedistill.models.checkpoint import load_checkpoint, save_checkpoint
    from posedistill.models.pretrained import default_weights

    ckpt = {k: v for k, v in load_checkpoint(default_weights(backend="torch")).items() if k != "model_meta"}
    save_checkpoint(tmp_path / "s.pt", {**ckpt, "sigma": 1.0})  # trained weights: peaked heatmaps
    predictor = Predictor(tmp_path / "s.pt", dark=True, threads=1)
    assert predictor.meta.sigma == 1.0 and predictor.meta.decode == "dark"
    image = sorted((lspet_mini / "images").glob("*.jpg"))[0]
    box = [5.0, 5.0, 90.0, 140.0]
    piped = predict_paths(predictor, [image], bbox=box, progress=False)[0]["keypoints"]
    direct = predictor(cv2.imread(str(image)), [box]).to_records()[0]["keypoints"]
    for got, want in zip(piped, direct):
        assert (got["x"], got["y"]) == (pytest.approx(want["x"], abs=1e-3), pytest.approx(want["y"], abs=1e-3))
