"""A content-addressed cache: generated data and trained models, stored under a hash of what made them.

An entry's key is its config plus a hash of the library code that made it (``code_hash``): a student who edits a
loss gets a retrained model, never the old one. A later notebook that needs a model asks for it by the same config
and gets the stored copy, or trains it when absent (``train_or_load``).

Guarantees: an entry is written in a temporary folder and moved into place in one ``os.replace``, under a file
lock, so two processes asking for the same entry build it once and an interrupted build leaves nothing behind;
every file's sha256 is recorded at write time and checked on every load, and a damaged entry is a ``CacheError``
naming the entry and how to rebuild it, never a silent retrain; payloads are safetensors and JSON, so loading an
entry never runs code.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
import types
import typing
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from tutorlib.paths import data_dir
from tutorlib.profiles import active_profile

COMPLETE_MARKER = ".complete"
MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
INFO_FILE = "info.json"
# The packages of the five systems; code_hash leaves out those an entry does not name.
SYSTEMS = ("sscr", "simat", "drawing", "vismin", "idc")
# The library's source folder, whose files code_hash reads.
LIBRARY_ROOT = Path(__file__).resolve().parent

ModelT = TypeVar("ModelT", bound=torch.nn.Module)
ConfigT = TypeVar("ConfigT")


class CacheError(RuntimeError):
    """A damaged cache entry: the message names the entry, the problem and how to rebuild it."""


def to_json_value(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON types: dataclasses and mappings become dicts, tuples become lists,
    numpy and one-element torch values become python numbers.

    Raises TypeError naming the offending field (``where``) for anything else.
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
    """
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(to_json_value(config, "config"), sort_keys=True, indent=indent, separators=separators)


def config_hash(config: Any) -> str:
    """12 hex characters of the sha256 of the config's canonical JSON."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()[:12]


def _from_json(kind: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(kind):
        return config_from_json(kind, value, where)
    origin = typing.get_origin(kind)
    if origin is tuple and isinstance(value, list):
        items = typing.get_args(kind)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_from_json(items[0], item, f"{where}[{i}]") for i, item in enumerate(value))
        return tuple(_from_json(item_kind, item, f"{where}[{i}]")
                     for i, (item_kind, item) in enumerate(zip(items, value)))
    if origin in (typing.Union, types.UnionType):
        nested = [k for k in typing.get_args(kind) if dataclasses.is_dataclass(k)]
        if nested and isinstance(value, dict):
            return config_from_json(nested[0], value, where)
    return value


def config_from_json(cls: type[ConfigT], data: Mapping[str, Any], where: str = "config") -> ConfigT:
    """Rebuild the dataclass ``cls`` from its JSON form (``to_json_value``): nested dataclasses and tuples are
    restored from their field types; an unknown or missing field is a ValueError naming it."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: {cls.__name__} has no field(s) {unknown}; its fields are {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    return cls(**{name: _from_json(hints[name], value, f"{where}.{name}") for name, value in data.items()})


def _package_files(root: Path, systems: Sequence[str]) -> list[Path]:
    left_out = [root / name for name in SYSTEMS if name not in systems]
    return sorted(p for p in root.rglob("*.py") if not any(p.is_relative_to(folder) for folder in left_out))


def code_hash(systems: Sequence[str] = ()) -> str:
    """12 hex characters of the sha256 over the library's source files: the shared modules and the world, plus
    the packages of ``systems`` (e.g. ``("vismin",)``); the other systems' packages are left out."""
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; systems are {SYSTEMS}")
    digest = hashlib.sha256()
    for path in _package_files(LIBRARY_ROOT, systems):
        digest.update(path.relative_to(LIBRARY_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _calling_systems() -> tuple[str, ...]:
    """The system package of the module that called the public cache function (``()`` for the shared modules,
    notebooks and scripts)."""
    module = sys._getframe(2).f_globals.get("__name__", "")
    parts = module.split(".")
    return (parts[1],) if len(parts) >= 2 and parts[0] == "tutorlib" and parts[1] in SYSTEMS else ()


def cache_key(config: Any, systems: Sequence[str] | None = None) -> dict:
    """What an entry is stored under: the config, the code hash (``systems`` default: the calling system's
    package) and, under the ``dry`` profile, a mark that keeps its few-step models apart from ``full``'s."""
    systems = _calling_systems() if systems is None else tuple(systems)
    key = {"config": config, "code": code_hash(systems)}
    if active_profile() == "dry":
        key["profile"] = "dry"
    return key


def cache_path(name: str, config: Any, systems: Sequence[str] | None = None) -> Path:
    """Where the entry ``name`` built from ``config`` lives: ``data_dir()/cache/<name>-<hash of its key>``."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"cache name {name!r} must be a non-empty name without path separators or a leading dot")
    systems = _calling_systems() if systems is None else tuple(systems)
    return data_dir() / "cache" / f"{name}-{config_hash(cache_key(config, systems))}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(folder: Path, skip: Sequence[str] = ()) -> dict[str, str]:
    """sha256 of every file below ``folder`` (relative POSIX path -> hex digest), leaving out the ``skip`` names."""
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in skip}


def verify_checksums(folder: Path, expected: Mapping[str, str]) -> str | None:
    """None when every file of ``expected`` is there with its checksum and no file is extra; else the problem."""
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if _sha256(path) != digest:
            return f"{path} does not match the checksum recorded when it was written"
    return None


def _check_entry(folder: Path) -> None:
    manifest = folder / MANIFEST_FILE
    rebuild = f"delete the entry to rebuild it: rm -r '{folder}'"
    try:
        expected = json.loads(manifest.read_text())
    except (OSError, ValueError) as error:
        raise CacheError(f"cache entry {folder} is damaged: {manifest.name} is unreadable ({error}); {rebuild}") \
            from None
    problem = verify_checksums(folder, expected)
    if problem:
        raise CacheError(f"cache entry {folder} is damaged: {problem}; {rebuild}")


@contextlib.contextmanager
def _locked(final: Path) -> Iterator[None]:
    """An exclusive lock on ``final`` across processes (released when the process dies)."""
    locks = final.parent / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{final.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def cached_dir(name: str, config: Any, build: Callable[[Path], None],
               systems: Sequence[str] | None = None) -> Path:
    """The checked cache folder for ``(name, config)``, built by ``build(folder)`` when absent.

    ``build`` fills a temporary sibling folder; the config, the checksums of every file and a completion marker
    are added and the folder is moved into place in one step. ``systems`` names the packages whose code the
    entry depends on (default: the calling system's package).
    """
    systems = _calling_systems() if systems is None else tuple(systems)
    final = cache_path(name, config, systems)
    if not _is_complete(final):
        with _locked(final):
            if not _is_complete(final):
                _build(final, config, systems, build)
    _check_entry(final)
    return final


def _build(final: Path, config: Any, systems: Sequence[str], build: Callable[[Path], None]) -> None:
    _remove_stale_temporaries(final)
    if final.exists():  # a folder without its marker was not written by this module: replace it
        shutil.rmtree(final)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    temporary.mkdir()
    try:
        build(temporary)
        key = cache_key(config, systems)
        (temporary / CONFIG_FILE).write_text(canonical_json(key, indent=2) + "\n")
        checksums = file_checksums(temporary, skip=(MANIFEST_FILE, COMPLETE_MARKER))
        (temporary / MANIFEST_FILE).write_text(json.dumps(checksums, indent=1) + "\n")
        (temporary / COMPLETE_MARKER).touch()
        os.replace(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def train_or_load(name: str, config: Any, build: Callable[[], ModelT], train: Callable[[ModelT], dict | None],
                  device: torch.device | str, systems: Sequence[str] | None = None) -> tuple[ModelT, dict]:
    """The model for ``config`` in eval mode on ``device``: loaded from the cache, or built, trained and cached.

    ``build()`` makes the untrained model; ``train(model)`` trains it in place (on ``device``) and may return a
    dict of training info (losses, timings), stored as JSON beside the weights (safetensors). The returned info
    has ``info["from_cache"]`` telling which path was taken.
    """
    systems = _calling_systems() if systems is None else tuple(systems)
    model = build()
    folder = cache_path(name, config, systems)
    from_cache = _is_complete(folder)
    if from_cache:
        _check_entry(folder)
        info = json.loads((folder / INFO_FILE).read_text())
    else:
        holder: dict = {}

        def write_model(temporary: Path) -> None:
            model.to(device)
            holder["info"] = to_json_value(train(model) or {}, "training info")
            save_model(model, str(temporary / MODEL_FILE))
            (temporary / INFO_FILE).write_text(json.dumps(holder["info"], indent=2) + "\n")

        folder = cached_dir(name, config, write_model, systems)
        # Another process may have finished the entry while this one waited for the lock: load what it wrote.
        from_cache = "info" not in holder
        info = json.loads((folder / INFO_FILE).read_text()) if from_cache else holder["info"]
    if from_cache:
        load_model(model, str(folder / MODEL_FILE))
    return model.to(device).eval(), {**info, "from_cache": from_cache}

