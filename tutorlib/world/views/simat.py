"""Transformation queries in the style of SIMAT: the data of notebook 02_simat_delta_retrieval.

Each image shows exactly two objects and is characterised by one triplet (subject, relation, object),
e.g. ("red cube", "left", "green sphere"): the subject object stands in `relation` to the object object
(checked with `Scene.related`, with a visible margin). A transformation query takes an image and changes
one field of its triplet ("red cube" -> "blue cube", "left" -> "behind", ...); the answer is retrieved from
the database of all images.

Defaults: 6 subject phrases (red and blue cube, sphere, cylinder) x 4 relations x 6 object phrases (green
and yellow cube, sphere, cylinder) = 144 triplets. Subject and object colours are disjoint so that every
caption names two different-looking objects and "the red cube" is always the subject. Images are spread
evenly over the triplets, so `n_images = 144 * k` gives every caption k images (k >= 3 recommended).
Sizes and materials are random. Note that a scene always satisfies one lateral and one depth relation
(an image labelled "left" may also show the subject in front): judge retrieval with the scene graphs
(`holds`), as SIMAT judges it with an image-caption oracle, not with the labels alone.
Introduced in notebook 02_simat_delta_retrieval.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...progress import progress as _progress
from ..attributes import COLORS, MATERIALS, RELATIONS, SHAPES, SIZE_RADIUS, SIZES
from ..oracle import Oracle
from ..render import check_image_size, render
from ..rng import check_seed, uniform
from ..sampling import place_object
from ..scene import Scene
from ..text import relation_caption
from .common import VIEW_SIMAT, check_choices, check_count, item_seeds
from .editing import relation_where

FIELDS = ("subj", "rel", "obj")
DEFAULT_SUBJECTS = ("red cube", "red sphere", "red cylinder", "blue cube", "blue sphere", "blue cylinder")
DEFAULT_OBJECTS = ("green cube", "green sphere", "green cylinder", "yellow cube", "yellow sphere", "yellow cylinder")
# Region ids differ from dataset ids on purpose, as in SIMAT: transfos.csv names region ids, images are
# stored by dataset id, and triplets.csv maps one to the other.
REGION_OFFSET = 100_000
MAX_RESTARTS = 100


def phrase_filter(phrase: str) -> dict[str, str]:
    """Attributes named by an entity phrase: "red cube" -> {"color": "red", "shape": "cube"}.

    Any of size, color, material and shape may appear, in any order; unknown words raise ValueError.
    """
    lookup = {v: a for a, vs in (("size", SIZES), ("color", COLORS), ("material", MATERIALS), ("shape", SHAPES))
              for v in vs}
    attributes: dict[str, str] = {}
    for word in phrase.split():
        if word not in lookup:
            raise ValueError(f"{word!r} in {phrase!r} is not an attribute value of the shapes world")
        if lookup[word] in attributes:
            raise ValueError(f"{phrase!r} names two values of {lookup[word]}")
        attributes[lookup[word]] = word
    if "shape" not in attributes:
        raise ValueError(f"{phrase!r} names no shape; use e.g. 'red cube'")
    return attributes


@dataclass(frozen=True)
class Transformation:
    """One row of transfos.csv: change `field` of the source image's triplet from `value` to `target`.

    query_ids / target_ids are caption ids (lines of captions.txt) of the source and target triplets;
    norm2 is the number of rows with the same source value (SIMAT weighs a query by norm2 ** -0.5).
    """

    region_id: int
    field: str
    value: str
    target: str
    query_ids: int
    target_ids: int
    norm2: float
    is_test: bool

    @property
    def weight(self) -> float:
        return float(self.norm2) ** -0.5

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SimatData(Dataset):
    """A SIMAT database: images, their triplets and ids, the captions and the transformation queries.

    Both the generated database (SimatDatabase) and a folder read by `read_simat` are SimatData.
    Positions 0..N-1 are images sorted by dataset id. Item (a dict): image (3, H, W) uint8 (None when the
    images are not available), triplet (subj, rel, obj), caption, region_id, dataset_id, scene (or None).
    """

    def __init__(
        self,
        region_ids: Sequence[int],
        dataset_ids: Sequence[int],
        triplets: Sequence[tuple[str, str, str]],
        captions: Sequence[str],
        transformations: Sequence[Transformation],
        *,
        images: torch.Tensor | None = None,
        image_loader: Callable[[int], torch.Tensor | None] | None = None,
        scenes: Sequence[Scene] | None = None,
        caption_ids: dict[tuple[str, str, str], int] | None = None,
        name: str = "SIMAT database",
    ):
        order = np.argsort(np.asarray(dataset_ids, dtype=np.int64), kind="stable")
        self.dataset_ids = [int(dataset_ids[i]) for i in order]
        self.region_ids = [int(region_ids[i]) for i in order]
        self.triplets = [tuple(triplets[i]) for i in order]
        if len(set(self.dataset_ids)) != len(self.dataset_ids):
            raise ValueError("dataset ids must be unique")
        if len(set(self.region_ids)) != len(self.region_ids):
            raise ValueError("region ids must be unique")
        self.captions = list(captions)
        self.transformations = list(transformations)
        self.scenes = None if scenes is None else [scenes[i] for i in order]
        self._images = None if images is None else images[torch.as_tensor(order)]
        self._image_loader = image_loader
        self.name = name
        self._position_of_dataset = {d: k for k, d in enumerate(self.dataset_ids)}
        self._position_of_region = {r: k for k, r in enumerate(self.region_ids)}
        if caption_ids is None:  # recover triplet -> caption id from the queries
            caption_ids = {}
            for row in self.transformations:
                source = self.triplets[self._position_of_region[row.region_id]]
                caption_ids.setdefault(source, row.query_ids)
                caption_ids.setdefault(_replace(source, row.field, row.target), row.target_ids)
            line_of = {c: k for k, c in enumerate(self.captions)}
            for triplet in set(self.triplets) - set(caption_ids):  # images no query starts from or leads to
                if triplet[1] in RELATIONS and relation_caption(*triplet) in line_of:
                    caption_ids[triplet] = line_of[relation_caption(*triplet)]
        self.caption_ids = dict(caption_ids)

    # -- lookups ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.dataset_ids)

    def position(self, *, dataset_id: int | None = None, region_id: int | None = None) -> int:
        """Position (0..N-1) of the image with this dataset id or region id."""
        if (dataset_id is None) == (region_id is None):
            raise ValueError("give exactly one of dataset_id and region_id")
        table, key = ((self._position_of_dataset, dataset_id) if dataset_id is not None
                      else (self._position_of_region, region_id))
        if key not in table:
            raise KeyError(f"unknown {'dataset_id' if dataset_id is not None else 'region_id'} {key}")
        return table[key]

    def dataset_id_of(self, region_id: int) -> int:
        """The dataset id of a region id (the mapping of triplets.csv)."""
        return self.dataset_ids[self.position(region_id=region_id)]

    def item_of(self, *, dataset_id: int | None = None, region_id: int | None = None) -> dict[str, Any]:
        """The item of the image with this dataset id or region id."""
        return self[self.position(dataset_id=dataset_id, region_id=region_id)]

    def image(self, position: int) -> torch.Tensor | None:
        """The image at `position` (= its dataset id when the ids are 0..N-1, as in SIMAT)."""
        if self._images is not None:
            return self._images[position]
        if self._image_loader is not None:
            return self._image_loader(self.dataset_ids[position])
        return None

    @property
    def has_images(self) -> bool:
        return self._images is not None or self._image_loader is not None

    @property
    def images(self) -> torch.Tensor:
        """All images as one (N, 3, H, W) uint8 tensor (loaded once when read from a folder)."""
        if self._images is None:
            if not self.has_images:
                raise ValueError(f"{self.name} has no images")
            loaded = [self.image(k) for k in range(len(self))]
            if len({tuple(im.shape) for im in loaded}) > 1:
                raise ValueError("the images have different sizes; resize them before stacking")
            self._images = torch.stack(loaded)
        return self._images

    def caption_of(self, triplet: Sequence[str]) -> str:
        return self.captions[self.caption_ids[tuple(triplet)]]

    def __getitem__(self, position: int) -> dict[str, Any]:
        if not -len(self) <= position < len(self):
            raise IndexError(f"image {position} out of range for {len(self)} images")
        position %= len(self)
        triplet = self.triplets[position]
        caption_id = self.caption_ids.get(triplet)
        return {
            "image": self.image(position),
            "triplet": triplet,
            "caption": None if caption_id is None else self.captions[caption_id],
            "region_id": self.region_ids[position],
            "dataset_id": self.dataset_ids[position],
            "scene": None if self.scenes is None else self.scenes[position],
        }

    def split(self, name: str) -> list[Transformation]:
        """The transformation queries of the "dev" or the "test" split."""
        if name not in ("dev", "test"):
            raise ValueError(f"split must be 'dev' or 'test', got {name!r}")
        return [t for t in self.transformations if t.is_test == (name == "test")]

    def holds(self, position: int, triplet: Sequence[str]) -> bool | None:
        """Whether the image at `position` truly shows `triplet` (some object matching the subject stands in
        the relation to another object matching the object phrase), from its scene graph; None without scenes.
        """
        if self.scenes is None:
            return None
        subj, rel, obj = triplet
        return Oracle(self.scenes[position]).relate(phrase_filter(subj), rel, phrase_filter(obj))

    def describe(self) -> str:
        subj, rel, obj = (sorted({t[k] for t in self.triplets}) for k in range(3))
        per_caption = np.bincount([self.caption_ids[t] for t in self.triplets if t in self.caption_ids],
                                  minlength=len(self.captions))
        present = per_caption[per_caption > 0]
        fields = {f: sum(t.field == f for t in self.transformations) for f in FIELDS}
        return (
            f"{self.name}: {len(self)} images, {len(set(self.triplets))} triplets ({len(subj)} subjects x "
            f"{len(rel)} relations x {len(obj)} objects), {len(self.captions)} captions "
            f"({present.min() if len(present) else 0} to {present.max() if len(present) else 0} images each); "
            f"{len(self.transformations)} transformation queries ({fields['subj']} subj, {fields['rel']} rel, "
            f"{fields['obj']} obj): dev {len(self.split('dev'))}, test {len(self.split('test'))}."
        )

    def __repr__(self) -> str:
        return f"<{self.name}: {len(self)} images, {len(self.transformations)} transformations>"


def _replace(triplet: tuple[str, str, str], field: str, value: str) -> tuple[str, str, str]:
    out = list(triplet)
    out[FIELDS.index(field)] = value
    return tuple(out)  # type: ignore[return-value]


def build_transformations(
    region_ids: Sequence[int], triplets: Sequence[tuple[str, str, str]], is_test: Sequence[bool],
    values: dict[str, Sequence[str]], caption_ids: dict[tuple[str, str, str], int],
) -> list[Transformation]:
    """Every query (image, field, other value of the field) whose target triplet has an image, with SIMAT's
    norm2 = number of rows with the same source value.
    """
    rows = []
    for region_id, triplet, test in zip(region_ids, triplets, is_test):
        for k, field in enumerate(FIELDS):
            for target in values[field]:
                if target == triplet[k]:
                    continue
                target_triplet = _replace(triplet, field, target)
                if target_triplet in caption_ids:
                    rows.append((region_id, field, triplet[k], target, caption_ids[triplet],
                                 caption_ids[target_triplet], bool(test)))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[2]] = counts.get(row[2], 0) + 1
    return [Transformation(r, f, v, t, q, g, counts[v], test) for r, f, v, t, q, g, test in rows]


def _phrases(name: str, phrases) -> tuple[str, ...]:
    """Entity phrases as a tuple; ValueError naming `name` and the phrase unless each is one (see phrase_filter)."""
    if isinstance(phrases, str):
        raise ValueError(f"{name} must be a list of phrases such as 'red cube', got the string {phrases!r}")
    phrases = tuple(phrases)
    if not phrases:
        raise ValueError(f"{name} must name at least one phrase such as 'red cube'")
    for phrase in phrases:
        try:
            phrase_filter(phrase)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    return phrases


class SimatDatabase(SimatData):
    """A generated SIMAT database of `n_images` two-object scenes (see the module doc for the defaults).

    subjects / objects: entity phrases ("red cube"; any of size, color, material, shape words); the triplets
    are subjects x relations x objects, images spread evenly over them in a random order. test_share of the
    source images (chosen at random, deterministically) make the test split.
    """

    def __init__(
        self,
        n_images: int,
        size: int = 64,
        seed: int = 0,
        subjects: Sequence[str] | None = None,
        objects: Sequence[str] | None = None,
        relations: Sequence[str] = RELATIONS,
        test_share: float = 0.5,
        *,
        device: str | torch.device = "cpu",
        progress: bool = True,
    ):
        subjects = _phrases("subjects", DEFAULT_SUBJECTS if subjects is None else subjects)
        objects = _phrases("objects", DEFAULT_OBJECTS if objects is None else objects)
        relations = check_choices("relations", relations, RELATIONS)
        for name, values in (("subjects", subjects), ("objects", objects), ("relations", relations)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct, got {list(values)}")
        if not 0.0 <= test_share <= 1.0:
            raise ValueError(f"test_share must be in [0, 1], got {test_share}")
        n_images = check_count("n_images", n_images)
        self.size, self.seed, self.test_share = check_image_size(size), check_seed(seed), float(test_share)
        self.subjects, self.relations, self.objects = subjects, relations, objects

        all_triplets = [(s, r, o) for s in subjects for r in relations for o in objects]
        order = np.argsort(uniform([seed], 21, len(all_triplets))[0], kind="stable")
        triplets = [all_triplets[order[i % len(all_triplets)]] for i in range(n_images)]
        scenes = [self._scene(i, t) for i, t in enumerate(triplets)]
        present = set(triplets)
        caption_ids = {t: k for k, t in enumerate(t for t in all_triplets if t in present)}
        captions = [relation_caption(*t) for t in caption_ids]
        test_count = int(round(test_share * n_images))
        test = np.zeros(n_images, dtype=bool)
        test[np.argsort(uniform([seed], 22, n_images)[0], kind="stable")[:test_count]] = True
        region_ids = [REGION_OFFSET + i for i in range(n_images)]
        transformations = build_transformations(
            region_ids, triplets, test, {"subj": subjects, "rel": relations, "obj": objects}, caption_ids)

        chunks = []
        bar = {} if progress else {"disable": True}
        for start in _progress(range(0, n_images, 512), desc="render SIMAT", **bar):
            chunks.append(render(scenes[start : start + 512], self.size, device=device).images.cpu())
        images = torch.cat(chunks) if chunks else torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)
        super().__init__(region_ids, list(range(n_images)), triplets, captions, transformations, images=images,
                         scenes=scenes, caption_ids=caption_ids, name="SimatDatabase")

    def _scene(self, index: int, triplet: tuple[str, str, str]) -> Scene:
        subj, rel, obj = triplet
        for attempt in range(MAX_RESTARTS):
            key = int(item_seeds(self.seed, [index], VIEW_SIMAT, attempt)[0])
            draws = uniform([key], 5, 4)[0]
            pick = lambda values, u: values[min(int(u * len(values)), len(values) - 1)]  # noqa: E731
            obj_attrs = {"size": pick(SIZES, draws[0]), "material": pick(MATERIALS, draws[1]), **phrase_filter(obj)}
            subj_attrs = {"size": pick(SIZES, draws[2]), "material": pick(MATERIALS, draws[3]), **phrase_filter(subj)}
            anchor = place_object(Scene(), key, stream=6, **obj_attrs)
            if anchor is None:
                continue
            scene = Scene((anchor,))
            where = relation_where(anchor, rel, SIZE_RADIUS[subj_attrs["size"]])
            subject = place_object(scene, key, stream=7, where=where, tries=128, **subj_attrs)
            if subject is not None:
                return Scene((subject, anchor))  # the subject is object 0, the object object 1
        raise RuntimeError(f"image {index}: no layout found for {triplet}")

    def __repr__(self) -> str:
        return (f"SimatDatabase(n_images={len(self)}, size={self.size}, seed={self.seed}, "
                f"{len(self.subjects)} subjects x {len(self.relations)} relations x {len(self.objects)} objects)")

