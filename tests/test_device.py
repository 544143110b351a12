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


def test_cpu_with_an_index_is_refused(cpu_only):
    with pytest.raises(ValueError, match=r"device 'cpu:5': cpu has no index 5; use 'cpu'"):
        pick_device("cpu:5")
    assert pick_device("cpu:0") == torch.device("cpu:0")


def test_set_threads_defaults_to_every_core_and_obeys_the_environment(monkeypatch):
    from tutorlib.device import cpu_cores, set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("TUTORLIB_THREADS", raising=False)
        assert set_threads(0) == cpu_cores() == torch.get_num_threads()
        assert set_threads(1) == 1 == torch.get_num_threads()
        monkeypatch.setenv("TUTORLIB_THREADS", "2")
        assert set_threads(1) == 2
        monkeypatch.setenv("TUTORLIB_THREADS", "two")
        with pytest.raises(ValueError, match="TUTORLIB_THREADS must be a whole number, got 'two'"):
            set_threads()
        monkeypatch.setenv("TUTORLIB_THREADS", "-1")
        with pytest.raises(ValueError, match="threads must be 0"):
            set_threads()
    finally:
        torch.set_num_threads(before)


def test_autocast_runs_bfloat16_on_the_cpu_under_dry(monkeypatch):
    import tutorlib.profiles as profiles

    monkeypatch.setattr(profiles, "_active", "dry")
    with autocast("cpu"):
        assert torch.nn.Linear(4, 4)(torch.ones(1, 4)).dtype == torch.bfloat16


def test_to_device_moves_nested_tensors_only():
    from collections import namedtuple

    from tutorlib.device import to_device

    Pair = namedtuple("Pair", "a b")
    moved = to_device({"x": [torch.ones(1), "text"], "p": Pair(torch.zeros(1), 3)}, "cpu")
    assert moved["x"][1] == "text" and isinstance(moved["p"], Pair) and moved["p"].b == 3


def test_configure_turns_tf32_on_for_cuda_only():
    from tutorlib.device import configure

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        configure(torch.device("cpu"))
        assert not torch.backends.cuda.matmul.allow_tf32
        configure(torch.device("cuda"))
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_to_device_pins_and_copies_without_blocking_on_cuda(monkeypatch):
    """No GPU here: the cuda path is checked with a fake tensor that records how it was moved."""
    from tutorlib.device import to_device

    calls = []

    class FakeTensor(torch.Tensor):
        pass

    tensor = torch.ones(2).as_subclass(FakeTensor)
    monkeypatch.setattr(FakeTensor, "pin_memory", lambda self: calls.append("pin") or self, raising=False)
    monkeypatch.setattr(FakeTensor, "to", lambda self, device, non_blocking=False: calls.append(
        (str(device), non_blocking)) or self, raising=False)
    to_device({"x": tensor}, "cuda")
    assert calls == ["pin", ("cuda", True)]
    calls.clear()
    to_device([tensor], "cpu")
    assert calls == [("cpu", False)]
