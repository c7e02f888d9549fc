import pytest
import torch

from posedistill.errors import ConfigError
from posedistill.models import StackedHourglass, build_model, get_model_spec, list_models, stacked_hourglass
from posedistill.bench.profiling import count_gmacs, count_parameters


@pytest.mark.parametrize(
    "stacks,channels,joints,size",
    [(1, 32, 14, 64), (2, 32, 16, 64), (2, 32, 17, 128), (3, 16, 14, 64), (2, 32, 14, 192)],
)
def test_output_shapes_and_stack_count(stacks, channels, joints, size):
    model = stacked_hourglass(stacks=stacks, channels=channels, num_joints=joints).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert isinstance(out, list) and len(out) == stacks
    for o in out:
        assert o.shape == (2, joints, size // 4, size // 4)


def test_non_square_input():
    model = stacked_hourglass(stacks=1, channels=32, num_joints=14).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 128, 64))
    assert out[-1].shape == (1, 14, 32, 16)


def test_input_not_multiple_of_64_is_rejected():
    model = stacked_hourglass(stacks=1, channels=32, num_joints=14)
    with pytest.raises(ValueError, match="multiples of 64"):
        model(torch.randn(1, 3, 96, 96))


def test_teacher_parameter_count_matches_public_hourglass():
    # Public 8-stack 256-channel Hourglass implementations report 25.6 M parameters (16 MPII joints).
    params = count_parameters(build_model("hg8_256", num_joints=16))
    assert abs(params - 25.6e6) / 25.6e6 < 0.02


def test_teacher_gmacs_and_student_ratio():
    teacher, student = build_model("teacher"), build_model("student")
    t, s = count_gmacs(teacher, 256), count_gmacs(student, 256)
    assert 26.5 < t < 28.5
    assert 1 / 9 < s / t < 1 / 6


def test_gradient_reaches_every_parameter():
    model = stacked_hourglass(stacks=2, channels=32, num_joints=14, blocks=2)
    out = model(torch.randn(2, 3, 64, 64))
    sum(o.square().mean() for o in out).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_depthwise_variant_is_cheaper():
    plain, dw = build_model("hg2_64"), build_model("hg2_64_dw")
    assert count_parameters(dw) < 0.6 * count_parameters(plain)
    assert count_gmacs(dw, 64) < 0.7 * count_gmacs(plain, 64)
    assert any(m.groups > 1 for m in dw.modules() if isinstance(m, torch.nn.Conv2d))


def test_registry_names_and_aliases():
    names = list_models()
    for s in (1, 2, 4, 8):
        for c in (32, 64, 128, 256):
            assert f"hg{s}_{c}" in names and f"hg{s}_{c}_dw" in names
    assert get_model_spec("teacher") == get_model_spec("hg8_256")
    assert get_model_spec("student").stacks == 4 and get_model_spec("student").channels == 128
    assert get_model_spec("hg2_64_dw").depthwise


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError, match="valid names: teacher, student, hg1_32"):
        build_model("hg3_100")


def test_invalid_hyper_parameters():
    with pytest.raises(ValueError, match="stacks"):
        StackedHourglass(stacks=0, channels=32, num_joints=14)
    with pytest.raises(ValueError, match="multiple of 4"):
        StackedHourglass(stacks=1, channels=30, num_joints=14)
