import pytest
import torch

from tutorlib.device import autocast, available_devices, describe_device, pick_device


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.delenv("TUTORLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_prefers_cuda_then_mps_then_cpu(cpu_only, monkeypatch):
    assert pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda")


def test_environment_overrides_auto_only(cpu_only, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setenv("TUTORLIB_DEVICE", "cpu")
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("mps") == torch.device("mps")


def test_unavailable_device_names_what_is_available(cpu_only):
    with pytest.raises(ValueError, match=r"'cuda:1' is not available.*\['cpu'\]"):
        pick_device("cuda:1")


def test_unknown_device_is_refused(cpu_only):
    with pytest.raises(ValueError, match=r"unknown device 'tpu'.*'cpu', 'cuda', 'mps'"):
        pick_device("tpu")
    with pytest.raises(ValueError, match="unknown device 'meta'"):
        pick_device("meta")


def test_available_devices_lists_cpu_first(cpu_only):
    assert available_devices() == ["cpu"]


def test_autocast_is_a_no_op_on_cpu():
    layer = torch.nn.Linear(4, 4)
    with autocast(torch.device("cpu")):
        out = layer(torch.ones(1, 4))
    assert out.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a cuda device")
def test_autocast_uses_bfloat16_on_cuda():
    layer = torch.nn.Linear(4, 4).cuda()
    with autocast("cuda"):
        assert layer(torch.ones(1, 4, device="cuda")).dtype == torch.bfloat16


def test_describe_device_counts_cpu_threads():
    assert describe_device("cpu") == f"cpu ({torch.get_num_threads()} threads)"
    assert describe_device(torch.device("mps")) == "mps"
