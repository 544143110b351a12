import pytest
import torch

from tutorlib.shipped import read_shipped, save_shipped, ships, write_loss_curve


def test_round_trip_in_half_precision_keeps_integer_buffers(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model.train()(torch.randn(8, 3))  # one step of batch statistics: num_batches_tracked = 1
    config, log = {"width": 4, "widths": [3, 4]}, {"command": "test", "history": {"loss": [[0, 1.0], [10, 0.5]]}}
    save_shipped(model, config, log, tmp_path)
    meta, weights, info = read_shipped(tmp_path, "python -m test")
    assert meta == config and info["history"] == log["history"] and info["from_checkpoint"] == str(tmp_path)
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            assert weights[name].dtype == torch.float32 and torch.equal(weights[name], value.half().float())
        else:
            assert weights[name].dtype == value.dtype and torch.equal(weights[name], value)
    assert weights["1.num_batches_tracked"].item() == 1
    assert write_loss_curve(tmp_path).stat().st_size > 0


def test_ships_compares_configs_and_missing_files_are_named(tmp_path):
    save_shipped(torch.nn.Linear(2, 2), {"a": 1}, {"command": "c", "history": {}}, tmp_path)
    assert ships(tmp_path, {"a": 1}) and not ships(tmp_path, {"a": 2}) and not ships(tmp_path / "none", {"a": 1})
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model.safetensors: missing.*python -m make-it writes them"):
        read_shipped(tmp_path, "python -m make-it")
