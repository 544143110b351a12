import json
from dataclasses import dataclass, field

import pytest
import torch

from tutorlib.shipped import ShippedError, ShippedModel, read_shipped, save_shipped
from tutorlib.training import History, train_loop


def test_round_trip_in_half_precision_keeps_integer_buffers(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model.train()(torch.randn(8, 3))  # one step of batch statistics: num_batches_tracked = 1
    config, log = {"width": 4, "widths": [3, 4]}, {"command": "test", "history": {"loss": [[0, 1.0], [10, 0.5]]}}
    folder = save_shipped(model, config, log, tmp_path / "ship")
    meta, weights, info = read_shipped(folder, "python -m test")
    assert meta == config and info["history"] == log["history"] and info["from_checkpoint"] == str(folder)
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            assert weights[name].dtype == torch.float32 and torch.equal(weights[name], value.half().float())
        else:
            assert weights[name].dtype == value.dtype and torch.equal(weights[name], value)
    assert weights["1.num_batches_tracked"].item() == 1
    assert (folder / "loss_curve.png").stat().st_size > 0
    assert sorted(json.loads((folder / "checksums.json").read_text())) == [
        "config.json", "loss_curve.png", "model.safetensors", "training_log.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["ship"]  # no temporary folder left behind


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "config.json").unlink(), r"config.json is missing"),
    (lambda f: (f / "checksums.json").unlink(), r"checksums.json: missing"),
    (lambda f: (f / "checksums.json").write_text("{"), r"checksums.json: not valid JSON"),
    (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:-3] + b"abc"),
     r"model.safetensors does not match the checksum"),
    (lambda f: (f / "training_log.json").write_text("{}"), r"training_log.json does not match the checksum"),
])
def test_damaged_checkpoints_name_the_file_and_the_command(tmp_path, damage, message):
    folder = save_shipped(torch.nn.Linear(2, 2), {"a": 1}, {"command": "c", "history": {"loss": [[0, 1.0]]}},
                          tmp_path / "ship")
    damage(folder)
    with pytest.raises(ShippedError, match=message + r".*python -m make-it"):
        read_shipped(folder, "python -m make-it")


@dataclass(frozen=True)
class Inner:
    steps: int = 6
    lr: float = 0.1


@dataclass(frozen=True)
class Setup:
    inner: Inner = field(default_factory=Inner)
    width: int = 2


def build(setup: Setup) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(setup.width, 1)


def train(model, setup: Setup, device, checkpoint) -> History:
    optimizer = torch.optim.SGD(model.parameters(), lr=setup.inner.lr)

    def step_fn(batch, step):
        x = torch.randn(8, setup.width, generator=torch.Generator().manual_seed(step))
        loss = (model(x) - x.sum(dim=1, keepdim=True)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    return train_loop(step_fn, lambda step: None, setup.inner.steps, device=device, checkpoint=checkpoint,
                      state={"model": model, "optimizer": optimizer}, log_every=1)


def test_entry_point_trains_resumes_extends_and_loads_only_its_config(tmp_path, isolated_dirs, monkeypatch):
    monkeypatch.setenv("TUTORLIB_PROGRESS", "0")
    spec = ShippedModel("toy", "tests.toy", Setup(), build, train, steps_field="inner.steps")
    monkeypatch.setattr(ShippedModel, "folder", property(lambda self: tmp_path / "toy"))
    spec.main(["--steps", "4", "--threads", "1"])
    log = json.loads((tmp_path / "toy" / "training_log.json").read_text())
    assert log["command"] == "python -m tests.toy --steps 4" and log["history"]["loss"][-1][0] == 3
    first_seconds = log["seconds"]
    # extending the finished run with more steps resumes it: two more steps, the seconds add up
    spec.main(["--steps", "6", "--threads", "1"])
    log = json.loads((tmp_path / "toy" / "training_log.json").read_text())
    assert [step for step, _ in log["history"]["loss"]] == [0, 1, 2, 3, 4, 5] and log["seconds"] >= first_seconds
    # the same six steps in one go give the same weights
    straight = build(Setup())
    train(straight, Setup(), "cpu", None)
    model, _ = spec.load(Setup(), "cpu")
    assert torch.allclose(model.weight, straight.weight.half().float())
    # asking for fewer steps than the run has is refused, never mislabelled
    with pytest.raises(ValueError, match="past the 3 steps asked for"):
        spec.main(["--steps", "3", "--threads", "1"])
    with pytest.raises(ShippedError, match=r"another config.*inner.steps: shipped 6, asked 5.*python -m tests.toy"):
        spec.load(Setup(inner=Inner(steps=5)), "cpu")
