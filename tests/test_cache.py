import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from tutorlib.cache import (CacheError, cache_path, cached_dir, canonical_json, code_hash, config_from_json, config_hash,
                            to_json_value, train_or_load)
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
    assert path.parent == data_dir() / "cache" and path.name.startswith("clip-")
    assert path == cache_path("clip", Config(), systems=()) != cache_path("clip", Config(), systems=("sscr",))
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
    assert json.loads((first / "config.json").read_text())["config"]["inner"] == {"width": 8, "sizes": [1, 2]}
    assert (first / ".complete").is_file()


def test_interrupted_build_leaves_nothing(isolated_dirs):
    def build(folder):
        (folder / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_dir("scenes", Config(), build)
    assert [p.name for p in cache_path("scenes", Config()).parent.iterdir()] == [".locks"]


def test_stale_temporaries_of_dead_runs_are_removed(isolated_dirs):
    final = cache_path("scenes", Config())
    final.parent.mkdir(parents=True)
    dead_pid = max(2**22, os.getpid() + 1)
    stale = final.with_name(f".{final.name}.tmp-{dead_pid}-abcd")
    stale.mkdir()
    cached_dir("scenes", Config(), lambda folder: None)
    assert sorted(path.name for path in final.parent.iterdir()) == [".locks", final.name]


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

    model, info = train_or_load("linear", Config(), make_model, train, "cpu")
    assert info == {"final_loss": 0.5, "from_cache": False}
    loaded, loaded_info = train_or_load("linear", Config(), make_model, train, "cpu")
    assert not loaded.training
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

    train_or_load("tied", {"k": 1}, make_tied, train, "cpu")
    loaded, info = train_or_load("tied", {"k": 1}, make_tied, train, "cpu")
    assert info == {"from_cache": True}
    assert torch.equal(loaded[1].weight, torch.arange(4.0).view(2, 2))
    assert math.isclose(loaded[0].weight.sum().item(), 6.0)


def test_config_from_json_restores_nested_dataclasses_and_tuples():
    config = Config(lr=0.5, inner=Inner(width=3, sizes=(4, 5, 6)))
    assert config_from_json(Config, json.loads(canonical_json(config))) == config
    with pytest.raises(ValueError, match=r"config: Config has no field\(s\) \['depth'\]"):
        config_from_json(Config, {"depth": 3})
    with pytest.raises(ValueError, match=r"config.inner: expected a JSON object for Inner"):
        config_from_json(Config, {"inner": [1, 2]})


def test_code_hash_names_systems_and_changes_with_their_code(tmp_path, monkeypatch):
    assert code_hash(()) != code_hash(("sscr",)) != code_hash(("idc",))
    with pytest.raises(ValueError, match=r"unknown system\(s\) \['gpt'\]"):
        code_hash(("gpt",))


def test_editing_the_training_code_invalidates_the_entry(isolated_dirs, monkeypatch):
    """A student who edits a loss in a system package gets a retrained model, never the cached one."""
    import shutil

    import tutorlib.cache as cache

    library = isolated_dirs / "tutorlib"
    shutil.copytree(cache.LIBRARY_ROOT, library, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "LIBRARY_ROOT", library)
    calls = []

    def train(model):
        calls.append(1)

    def ask(system):
        train_or_load("linear", {"k": 1}, make_model, train, "cpu", systems=(system,))

    ask("simat"), ask("simat"), ask("idc")
    assert calls == [1, 1]
    heads = library / "simat" / "heads.py"
    heads.write_text(heads.read_text() + "\n# the student's edit of the loss\n")
    ask("simat")
    assert calls == [1, 1, 1]
    ask("idc")  # idc's entry does not depend on the simat package
    assert calls == [1, 1, 1]


def test_dry_profile_keeps_its_entries_apart(isolated_dirs, monkeypatch):
    import tutorlib.profiles as profiles

    normal = cache_path("m", {"k": 1})
    monkeypatch.setattr(profiles, "_active", "dry")
    assert cache_path("m", {"k": 1}) != normal


def test_damaged_entry_is_a_clear_error_not_a_retrain(isolated_dirs):
    calls = []
    _, _ = train_or_load("linear", Config(), make_model, lambda m: calls.append(1), "cpu")
    weights = cache_path("linear", Config()) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CacheError, match=r"model.safetensors does not match the checksum.*rm -r"):
        train_or_load("linear", Config(), make_model, lambda m: calls.append(1), "cpu")
    weights.unlink()
    with pytest.raises(CacheError, match=r"model.safetensors is missing"):
        cached_dir("linear", Config(), lambda folder: None)
    (cache_path("linear", Config()) / "manifest.json").write_text("{not json")
    with pytest.raises(CacheError, match=r"manifest.json is unreadable"):
        cached_dir("linear", Config(), lambda folder: None)
    assert calls == [1]
