"""The CPU-scaled issue-7 configs (configs/cpu/): they load, and one teacher cache serves every student."""

from pathlib import Path

from posedistill.config import load_config
from posedistill.models import get_model_spec

CPU = Path(__file__).parents[1] / "configs" / "cpu"


def _configs():
    paths = sorted(CPU.glob("*.yaml"))
    assert paths, "no configs in configs/cpu"
    return {p.stem: load_config(p) for p in paths}


def test_every_cpu_config_loads_and_names_itself():
    configs = _configs()
    for stem, cfg in configs.items():
        assert cfg.name == stem
        assert cfg.data.dataset == "lspet" and (cfg.data.train, cfg.data.val) == ("train6500", "val")
        assert cfg.data.input_size == 64
    assert configs["teacher_hg4_128"].model.name == "hg4_128"
    assert get_model_spec(configs["bin_hg2_64"].model.name).binarized
    fpd_points = {cfg.model.name for stem, cfg in configs.items() if stem.startswith("fpd_")}
    assert len(fpd_points) >= 4, fpd_points


def test_students_share_what_the_teacher_cache_depends_on():
    # TeacherCache.validate compares seed, data split and augmentation, input size and amp; epochs must fit
    configs = _configs()
    students = [cfg for stem, cfg in configs.items() if not stem.startswith("teacher")]
    keys = {(c.seed, c.data.train, c.data.input_size, c.data.augment,
             c.data.limit, c.data.skip_bad, c.train.amp, c.train.epochs) for c in students}
    assert len(keys) == 1, keys
