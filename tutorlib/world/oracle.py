"""The exact oracle: answers questions about a scene from its scene graph, the ground truth of every notebook.

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

from typing import Mapping

from .attributes import ATTRIBUTES, RELATIONS
from .scene import Scene

QUESTION_TYPES = ("exists", "count", "query", "relate")


class Oracle:
    """Answers existence, count, attribute and relation questions about one scene.

    Filters are attribute dictionaries, e.g. {"color": "red", "shape": "cube"}; {} matches every object.
    """

    def __init__(self, scene: Scene):
        self.scene = scene

    def select(self, **filters: str) -> list[int]:
        """Indices of the objects matching every filter."""
        return [i for i, o in enumerate(self.scene.objects) if o.matches(**filters)]

    def exists(self, **filters: str) -> bool:
        return bool(self.select(**filters))

    def count(self, **filters: str) -> int:
        return len(self.select(**filters))

    def query(self, attribute: str, **filters: str) -> str:
        """The `attribute` of the one object matching the filters; ValueError when none or several match."""
        if attribute not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {attribute!r}; choose one of {list(ATTRIBUTES)}")
        matches = self.select(**filters)
        if len(matches) != 1:
            raise ValueError(f"query needs exactly one object matching {filters}, found {len(matches)}")
        return getattr(self.scene.objects[matches[0]], attribute)

    def relate(self, subject: Mapping[str, str], relation: str, obj: Mapping[str, str]) -> bool:
        """Whether some object matching `subject` stands in `relation` to another object matching `obj`."""
        if relation not in RELATIONS:
            raise ValueError(f"unknown relation {relation!r}; choose one of {list(RELATIONS)}")
        return any(
            self.scene.related(i, relation, j)
            for i in self.select(**subject)
            for j in self.select(**obj)
            if i != j
        )

    def answer(self, question: Mapping) -> bool | int | str:
        """Answer a question given as a dict:
        {"type": "exists" | "count", "filter": {...}}, {"type": "query", "attribute": a, "filter": {...}},
        {"type": "relate", "subject": {...}, "relation": r, "object": {...}}.
        """
        kind = question.get("type")
        if kind == "exists":
            return self.exists(**question.get("filter", {}))
        if kind == "count":
            return self.count(**question.get("filter", {}))
        if kind == "query":
            return self.query(question["attribute"], **question.get("filter", {}))
        if kind == "relate":
            return self.relate(question["subject"], question["relation"], question["object"])
        raise ValueError(f"unknown question type {kind!r}; choose one of {list(QUESTION_TYPES)}")

