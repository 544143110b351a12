import pytest
import torch

from tutorlib.profiles import PROFILES, by_profile, resolve_profile


@pytest.fixture(autouse=True)
def no_profile_override(monkeypatch):
    monkeypatch.delenv("TUTORLIB_PROFILE", raising=False)


def test_auto_picks_by_device():
    assert resolve_profile("auto", torch.device("cuda")) == "full"
    assert resolve_profile("auto", "cuda:1") == "full"
    assert resolve_profile("auto", torch.device("cpu")) == "standard"
    assert resolve_profile("auto") == "standard"


def test_explicit_profiles_are_kept():
    for profile in PROFILES:
        assert resolve_profile(profile, "cuda") == profile


def test_environment_overrides_everything(monkeypatch):
    monkeypatch.setenv("TUTORLIB_PROFILE", "smoke")
    assert resolve_profile("full", "cuda") == "smoke"
    assert resolve_profile("auto", "cuda") == "smoke"


def test_unknown_profile_lists_valid_ones(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown profile 'fast'.*'smoke', 'standard', 'full'"):
        resolve_profile("fast")
    monkeypatch.setenv("TUTORLIB_PROFILE", "quick")
    with pytest.raises(ValueError, match="unknown profile 'quick'"):
        resolve_profile()


def test_by_profile_returns_the_matching_value():
    values = dict(smoke=1, standard=2, full=3)
    assert [by_profile(profile, **values) for profile in PROFILES] == [1, 2, 3, 3]  # dry takes full's by default
    assert by_profile("dry", **values, dry=1) == 1
    with pytest.raises(ValueError, match="unknown profile 'auto'"):
        by_profile("auto", **values)


def test_resolve_profile_remembers_the_active_one():
    from tutorlib.profiles import active_profile

    assert active_profile() is None
    resolve_profile("dry")
    assert active_profile() == "dry"


def test_dry_from_takes_data_fields_from_smoke():
    from dataclasses import dataclass

    from tutorlib.profiles import dry_from

    @dataclass
    class Config:
        width: int
        steps: int
        n_train: int

    assert dry_from(Config(512, 5000, 10000), Config(8, 20, 64), "n_train") == Config(512, 5000, 64)
    with pytest.raises(ValueError, match=r"Config has no field 'n_test'"):
        dry_from(Config(1, 1, 1), Config(1, 1, 1), "n_test")

    @dataclass
    class Outer:
        inner: Config
        n_test: int

    full, smoke = Outer(Config(512, 5000, 10000), 2000), Outer(Config(8, 20, 64), 16)
    assert dry_from(full, smoke, "inner.n_train", "n_test") == Outer(Config(512, 5000, 64), 16)
    with pytest.raises(ValueError, match=r"Config has no field 'pool' \(in 'pool'\)"):
        dry_from(full, smoke, "inner.pool")
