"""HMS models: timm architectures with one input channel, local pretrained weights loaded safely."""

from __future__ import annotations

import pytest
import torch

from trainables.hms import make_model, make_schedule


@pytest.mark.parametrize("architecture", ["efficientnet_b1", "efficientnet_b0", "resnet34d"])
@pytest.mark.parametrize("norm_layer", ["batchnorm", "groupnorm"])
def test_models_take_one_channel_and_start_from_uniform_predictions(architecture, norm_layer):
    model = make_model({"dropout": 0.2, "norm_layer": norm_layer}, {"architecture": architecture})
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(torch.randn(2, 1, 64, 32)), dim=1)
    torch.testing.assert_close(probs, torch.full((2, 6), 1 / 6))
    norms = {type(m).__name__ for m in model.modules()}
    assert ("BatchNormAct2d" in norms or "BatchNorm2d" in norms) == (norm_layer == "batchnorm")


def test_local_pretrained_weights_are_loaded_and_adapted(tmp_path):
    import timm

    source = timm.create_model("efficientnet_b0", pretrained=False)  # ImageNet layout: 3 channels, 1000 classes
    torch.nn.init.constant_(source.conv_stem.weight, 0.5)
    path = tmp_path / "b0.pth"
    torch.save(source.state_dict(), path)
    model = make_model(
        {"dropout": 0.0, "norm_layer": "batchnorm"}, {"architecture": "efficientnet_b0", "pretrained_file": str(path)}
    )
    assert model.conv_stem.weight.shape[1] == 1  # the three input channels summed into one
    torch.testing.assert_close(model.conv_stem.weight, torch.full_like(model.conv_stem.weight, 1.5))
    assert model.get_classifier().out_features == 6
    with pytest.raises(ValueError, match="norm_layer='groupnorm' cannot load them"):
        make_model(
            {"dropout": 0.0, "norm_layer": "groupnorm"},
            {"architecture": "efficientnet_b0", "pretrained_file": str(path)},
        )


@pytest.mark.parametrize("name", ["cosine", "onecycle", "exponential", "constant"])
def test_schedules_run_over_the_fold_and_end_low(name):
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([weight], lr=1e-3)
    schedule = make_schedule(name, optimizer, total_steps=20, lr=1e-3)
    rates = []
    for _ in range(20):
        optimizer.step()
        if schedule is not None:
            schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    if name == "constant":
        assert schedule is None and set(rates) == {1e-3}
    else:
        assert rates[-1] < 2e-4
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        make_schedule("linear", optimizer, 10, 1e-3)
