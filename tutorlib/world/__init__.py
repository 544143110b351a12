"""The shapes world: a CLEVR-like procedural world with exact ground truth.

Introduced in notebook 00_shapes_world.
"""
from .attributes import ATTRIBUTES, COLOR_RGB, COLORS, ENTITIES, MATERIALS, RELATIONS, SHAPES, SIZES
from .oracle import Oracle
from .render import Rendering, render
from .sampling import SceneBatch, place_object, sample_scene, sample_scenes
from .scene import Camera, Light, Obj, Scene, opposite, project
from .text import Vocabulary, count_phrase, object_phrase, relation_caption, scene_captions, tokenize, world_vocabulary

__all__ = [
    "ATTRIBUTES", "COLOR_RGB", "COLORS", "ENTITIES", "MATERIALS", "RELATIONS", "SHAPES", "SIZES",
    "Oracle", "Rendering", "render", "SceneBatch", "place_object", "sample_scene", "sample_scenes",
    "Camera", "Light", "Obj", "Scene", "opposite", "project",
    "Vocabulary", "count_phrase", "object_phrase", "relation_caption", "scene_captions", "tokenize",
    "world_vocabulary",
]
