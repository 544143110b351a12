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
    assert [by_profile(profile, **values) for profile in PROFILES] == [1, 2, 3]
    with pytest.raises(ValueError, match="unknown profile 'auto'"):
        by_profile("auto", **values)
