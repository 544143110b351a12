import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from tutorlib.cache import cache_path, cached_dir, cached_model, canonical_json, config_hash, to_json_value
from tutorlib.paths import data_dir


@dataclass
class Inner:
    width: int = 8
    sizes: tuple[int, ...] = (1, 2)


@dataclass
class Config:
    lr: float = 1e-3
    name: str = "tiny"
    inner: Inner = field(default_factory=Inner)


def test_hash_is_short_stable_and_ignores_key_order():
    digest = config_hash({"a": 1, "b": [1.5, None]})
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert digest == config_hash({"b": (1.5, None), "a": 1})
    assert digest != config_hash({"a": 2, "b": [1.5, None]})


def test_dataclasses_hash_like_their_dicts():
    as_dict = {"lr": 0.001, "name": "tiny", "inner": {"width": 8, "sizes": [1, 2]}}
    assert config_hash(Config()) == config_hash(as_dict)
    assert config_hash(Config(lr=0.001000)) == config_hash(Config())
    assert config_hash(Config(inner=Inner(width=9))) != config_hash(Config())


def test_numpy_and_torch_scalars_become_numbers():
    assert to_json_value({"x": np.float32(0.5), "n": np.int64(3), "t": torch.tensor(2.0)}) == {
        "x": 0.5,
        "n": 3,
        "t": 2.0,
    }
    assert canonical_json({"x": np.float64(0.1)}) == '{"x":0.1}'


def test_unserialisable_value_names_the_field():
    with pytest.raises(TypeError, match=r"config\.inner\.sizes\[1\] holds a value of type object"):
        config_hash(Config(inner=Inner(sizes=(1, object()))))
    with pytest.raises(TypeError, match="non-string key 3"):
        config_hash({3: "x"})


def test_cache_path_is_under_data_dir(isolated_dirs):
    path = cache_path("clip", Config())
    assert path == data_dir() / "cache" / f"clip-{config_hash(Config())}"
    with pytest.raises(ValueError, match="cache name 'a/b'"):
        cache_path("a/b", Config())


def test_cached_dir_builds_once(isolated_dirs):
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "data.txt").write_text("built")

    first = cached_dir("scenes", Config(), build)
    second = cached_dir("scenes", Config(), build)
    assert first == second == cache_path("scenes", Config())
    assert len(calls) == 1 and calls[0] != first
    assert (first / "data.txt").read_text() == "built"
    assert json.loads((first / "config.json").read_text())["inner"] == {"width": 8, "sizes": [1, 2]}
    assert (first / ".complete").is_file()


def test_interrupted_build_leaves_nothing(isolated_dirs):
    def build(folder):
        (folder / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_dir("scenes", Config(), build)
    assert list(cache_path("scenes", Config()).parent.iterdir()) == []


def test_stale_temporaries_of_dead_runs_are_removed(isolated_dirs):
    final = cache_path("scenes", Config())
    final.parent.mkdir(parents=True)
    dead_pid = max(2**22, os.getpid() + 1)
    stale = final.with_name(f".{final.name}.tmp-{dead_pid}-abcd")
    stale.mkdir()
    cached_dir("scenes", Config(), lambda folder: None)
    assert sorted(path.name for path in final.parent.iterdir()) == [final.name]


def make_model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def test_cached_model_trains_then_loads(isolated_dirs):
    trained_calls = []

    def train(model):
        trained_calls.append(1)
        with torch.no_grad():
            model.weight.fill_(0.25)
        return {"final_loss": np.float32(0.5)}

    model, info = cached_model("linear", Config(), make_model, train)
    assert info == {"final_loss": 0.5, "from_cache": False}
    loaded, loaded_info = cached_model("linear", Config(), make_model, train)
    assert trained_calls == [1]
    assert loaded_info == {"final_loss": 0.5, "from_cache": True}
    assert torch.equal(loaded.weight, model.weight) and torch.equal(loaded.bias, model.bias)
    assert torch.all(loaded.weight == 0.25)


def test_cached_model_with_tied_weights_and_no_info(isolated_dirs):
    def make_tied():
        model = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2, bias=False))
        model[1].weight = model[0].weight
        return model

    def train(model):
        with torch.no_grad():
            model[0].weight.copy_(torch.arange(4.0).view(2, 2))

    cached_model("tied", {"k": 1}, make_tied, train)
    loaded, info = cached_model("tied", {"k": 1}, make_tied, train)
    assert info == {"from_cache": True}
    assert torch.equal(loaded[1].weight, torch.arange(4.0).view(2, 2))
    assert math.isclose(loaded[0].weight.sum().item(), 6.0)
