import pytest

from posedistill.config import ExperimentConfig, config_from_dict, load_config
from posedistill.errors import ConfigError


def test_defaults_follow_the_paper():
    cfg = ExperimentConfig().validate()
    assert cfg.data.input_size == 256 and cfg.data.sigma == 2.0
    assert cfg.data.augment.rotation == 30 and cfg.data.augment.scale_factor == 0.25 and cfg.data.augment.flip
    assert cfg.optim.lr == 2.5e-4 and cfg.distill.alpha == 0.5


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model: {name: hg2_64}\ntrain: {epochs: 3, batch_size: 4}\ndistill: {alpha: 0.25}\n")
    cfg = load_config(path, ["train.epochs=7", "data.input_size=128", "schedule.milestones=[2, 5]"])
    assert cfg.model.name == "hg2_64" and cfg.train.epochs == 7 and cfg.train.batch_size == 4
    assert cfg.data.input_size == 128 and cfg.schedule.milestones == [2, 5] and cfg.distill.alpha == 0.25


def test_every_committed_config_loads():
    """configs/**.yaml and the config.yaml of every committed run, nested or in the older flat layout."""
    from pathlib import Path

    import yaml

    root = Path(__file__).parents[1]
    configs = sorted((root / "configs").rglob("*.yaml"))
    assert configs, "no configs committed"
    for path in configs:
        load_config(path)
    runs = sorted((root / "runs").rglob("config.yaml"))
    assert runs, "no run configs committed"
    for path in runs:  # a run's resolved config, its inputs under "run", reloads as written
        assert load_config(path).run.mode == yaml.safe_load(path.read_text())["run"]["mode"]


def test_a_config_starts_from_its_base(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "teacher.yaml").write_text(
        "name: teacher\nmodel: {name: hg4_128, depth: 3}\ndata: {root: ../data, input_size: 128, rotation: 20}\n"
        "optim: {lr: 1.0e-3}\ntrain: {epochs: 30, batch_size: 16}\n")
    (tmp_path / "student.yaml").write_text("base: recipes/teacher.yaml\nname: student\nmodel: {name: hg2_64}\n")
    (tmp_path / "fpd.yaml").write_text("base: student.yaml\nname: fpd\ndata: {augment: {negative_prob: 0.2}}\n"
                                       "distill: {alpha: 0.25}\n")
    teacher = load_config(tmp_path / "recipes" / "teacher.yaml")
    fpd = load_config(tmp_path / "fpd.yaml", ["train.epochs=4"])
    assert (fpd.name, fpd.model.name, fpd.model.depth) == ("fpd", "hg2_64", 3)  # mappings merge key by key
    assert fpd.data.input_size == 128 and fpd.optim == teacher.optim and fpd.train.epochs == 4
    assert fpd.data.augment.rotation == 20 and fpd.data.augment.negative_prob == 0.2  # flat base, nested child
    assert fpd.data.root == teacher.data.root == str(tmp_path / "recipes" / "../data")  # the base file's folder
    assert fpd.distill.alpha == 0.25 and teacher.distill.alpha == 0.5


def test_a_bad_base_is_one_clear_error(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"a.yaml: 'base' chain loops \(a.yaml -> b.yaml -> a.yaml\)"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"c.yaml: base missing.yaml not found"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: [a.yaml]\n")
    with pytest.raises(ConfigError, match="base must be the path of another config file"):
        load_config(tmp_path / "d.yaml")


def test_flat_augmentation_keys_are_read_into_the_nested_section():
    flat = config_from_dict({"data": {"scale_factor": 0.3, "rotation": 40, "flip": False, "color_jitter": 0.1}})
    nested = config_from_dict({"data": {"augment": {"scale_factor": 0.3, "rotation": 40, "flip": False,
                                                    "color_jitter": 0.1}}})
    assert flat.data.augment == nested.data.augment
    assert flat.to_dict() == nested.to_dict()
    assert load_config(None, ["data.rotation=15"]).data.augment.rotation == 15  # flat --set still works


def test_every_augmentation_option_can_be_set():
    cfg = load_config(None, ["data.augment.rotation_prob=1.0", "data.augment.shift_factor=0.1"])
    assert cfg.data.augment.rotation_prob == 1.0 and cfg.data.augment.shift_factor == 0.1


@pytest.mark.parametrize(
    "data,message",
    [
        ({"trian": {}}, "unknown config key trian"),
        ({"train": {"epoch": 3}}, "unknown config key train.epoch"),
        ({"train": {"epochs": "ten"}}, "train.epochs: expected an integer"),
        ({"data": {"augment": {"flip": "yes"}}}, "data.augment.flip: expected true or false"),
        ({"data": {"augment": {"rotation_prob": 2}}}, "data.augment.*rotation_prob"),
        ({"data": {"rotation": 10, "augment": {"rotation": 20}}}, "data.rotation and data.augment.rotation"),
        ({"data": {"dataset": "voc"}}, "data.dataset must be one of lsp, lspet, mpii, coco, json"),
        ({"data": {"input_size": 100}}, "multiple of 64"),
        ({"model": {"name": "hg5_5"}}, "unknown model 'hg5_5'"),
        ({"distill": {"alpha": 2}}, "distill.alpha"),
        ({"optim": {"optimizer": "lbfgs"}}, "optim.optimizer"),
        ({"schedule": {"milestones": 5}}, "schedule.milestones: expected a list"),
    ],
)
def test_validation_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("train:\n  epochs: -1\n")
    with pytest.raises(ConfigError, match=r"wrong.yaml: train.epochs"):
        load_config(wrong)
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["train.epochs"])


def test_exponent_without_dot_is_a_float():
    # PyYAML (YAML 1.1) reads 1e-3 as a string; the config accepts it as the number users mean
    cfg = load_config(None, ["optim.lr=1e-3"])
    assert cfg.optim.lr == 1e-3
    with pytest.raises(ConfigError, match="optim.lr: expected a number"):
        load_config(None, ["optim.lr=fast"])
