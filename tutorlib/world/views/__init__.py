"""Task views of the shapes world: one torch Dataset per system, each with exact ground truth.

Keep this file a plain list of imports, one block per view module.
"""
# ruff: noqa: F401  (re-exports)
# 01 SSCR: iterative editing dialogues (GeNeVA i-CLEVR)
from .common import SPLITS, SplitDataset, collate, item_seeds, split_counts
from .editing import EditingDialogues, region_of, relation_where, scene_bag

# 02 SIMAT: transformation queries over subject-relation-object scenes
from .simat import SimatData, SimatDatabase, Transformation, build_transformations, phrase_filter

# 03 Learning words by drawing: captioned scenes with concept masks
from .captioned import CONCEPTS, CaptionedScenes, concept_masks, regenerate

# 04 VisMin: minimal-change image-caption pairs
from .minimal_change import CATEGORIES, MinimalChangePairs, MinimalEdit, edit_boxes, minimal_edit, object_box

# 05 IDC: before / after / distractor triples with change captions (CLEVR-Change)
from .change_pairs import CHANGE_TYPES, ChangePairs, SceneChange, jitter_view
