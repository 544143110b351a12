"""A content-addressed cache: generated data and trained models are stored under a hash of their config.

A later notebook that needs a model asks for it by the same config and gets the stored copy, or
trains it when absent (train-or-load).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from tutorlib.paths import data_dir

COMPLETE_MARKER = ".complete"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
INFO_FILE = "info.json"

ModelT = TypeVar("ModelT", bound=torch.nn.Module)


def to_json_value(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON types: dataclasses and mappings become dicts, tuples become lists,
    numpy and one-element torch values become python numbers.

    Raises TypeError naming the offending field (``where``) for anything else.

    Introduced in notebook 00_shapes_world.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"{where} has a non-string key {key!r}; JSON keys must be strings")
        return {key: to_json_value(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise TypeError(
        f"{where} holds a value of type {type(value).__name__}, which JSON cannot hold; "
        "use None, bool, int, float, str, lists, dicts or dataclasses of those"
    )


def canonical_json(config: Any, indent: int | None = None) -> str:
    """The config as JSON with sorted keys, so equal configs give equal text.

    Floats are written by ``repr``, the shortest text that reads back to the same number.

    Introduced in notebook 00_shapes_world.
    """
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(to_json_value(config, "config"), sort_keys=True, indent=indent, separators=separators)


def config_hash(config: Any) -> str:
    """12 hex characters of the sha256 of the config's canonical JSON.

    Introduced in notebook 00_shapes_world.
    """
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()[:12]


def cache_path(name: str, config: Any) -> Path:
    """Where the entry ``name`` built from ``config`` lives: ``data_dir()/cache/<name>-<hash>``.

    Introduced in notebook 00_shapes_world.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"cache name {name!r} must be a non-empty name without path separators")
    return data_dir() / "cache" / f"{name}-{config_hash(config)}"


def _is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(final: Path) -> None:
    """Delete half-built siblings of ``final`` left by processes that have died."""
    for temporary in final.parent.glob(f".{final.name}.tmp-*"):
        pid = temporary.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if not pid.isdigit() or not _process_is_alive(int(pid)):
            shutil.rmtree(temporary, ignore_errors=True)


def cached_dir(name: str, config: Any, build: Callable[[Path], None]) -> Path:
    """The cache folder for ``(name, config)``, built by ``build(folder)`` when absent.

    ``build`` fills a temporary sibling folder; the config (``config.json``) and a completion marker
    are added and the folder is renamed into place in one step, so an interrupted build leaves
    nothing half written.

    Introduced in notebook 00_shapes_world.
    """
    final = cache_path(name, config)
    if _is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    if final.exists():  # a folder without its marker was not written by this function
        shutil.rmtree(final)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    temporary.mkdir()
    try:
        build(temporary)
        (temporary / CONFIG_FILE).write_text(canonical_json(config, indent=2) + "\n")
        (temporary / COMPLETE_MARKER).touch()
        try:
            os.replace(temporary, final)
        except OSError:
            if not _is_complete(final):  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return final


def cached_model(
    name: str,
    config: Any,
    make_model: Callable[[], ModelT],
    train: Callable[[ModelT], dict | None],
) -> tuple[ModelT, dict]:
    """Train-or-load: the model for ``config``, loaded from the cache or trained and then cached.

    ``make_model()`` builds the untrained model; ``train(model)`` trains it in place and may return
    a dict of training info (losses, timings), stored as JSON beside the weights (safetensors).
    The returned info has ``info["from_cache"]`` telling which path was taken.

    Introduced in notebook 00_shapes_world.
    """
    model = make_model()
    folder = cache_path(name, config)
    if _is_complete(folder):
        load_model(model, str(folder / MODEL_FILE))
        info = json.loads((folder / INFO_FILE).read_text())
        return model, {**info, "from_cache": True}

    info = to_json_value(train(model) or {}, "training info")

    def write_model(temporary: Path) -> None:
        save_model(model, str(temporary / MODEL_FILE))
        (temporary / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")

    cached_dir(name, config, write_model)
    return model, {**info, "from_cache": False}
