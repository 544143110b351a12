"""The VQA model's inputs and outputs, the questions written from edits, the keep rule and the exact realisation
of edits that lets the oracle judge the filter."""
import numpy as np
import pytest
import torch

from tutorlib.vismin.filtering import (KEEP, apply_edit, caption_relation, edit_questions, filter_edits,
                                       precision_recall)
from tutorlib.vismin.instructions import EditInstruction, LayoutEdit, Rejection, grammar_edit, visible_boxes
from tutorlib.vismin.sources import rendered_scenes
from tutorlib.vismin.vqa import (ANSWERS, GRID, VqaConfig, VqaData, VqaModel, attribute_maps, crop,
                                 crop_window, encode_questions, label_grid, load_vqa, scene_questions)
from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.oracle import Oracle
from tutorlib.world.views.simat import phrase_filter

SCENES, RENDERING = rendered_scenes(0, "sources", range(24), 64)
BOXES = [visible_boxes(RENDERING, b) for b in range(len(SCENES))]


def test_crop_window_and_crop():
    assert crop_window((10, 10, 4, 4), 64) == (4, 4, 16)  # side 4 * 2 + 8, centred on (12, 12)
    assert crop_window((60, 0, 4, 4), 64) == (48, 0, 16)  # kept inside the image
    image = torch.zeros(3, 64, 64, dtype=torch.uint8)
    image[:, 4:20, 4:20] = 200
    assert torch.equal(crop(image, (10, 10, 4, 4), 32), torch.full((3, 32, 32), 200, dtype=torch.uint8))


def test_attribute_maps_and_label_grid_match_the_scene():
    maps = attribute_maps(RENDERING)
    assert maps.shape == (24, 5, 64, 64)
    b, i = 0, next(iter(BOXES[0]))
    on = RENDERING.ids[b] == i
    obj = SCENES[b].objects[i]
    for k, name in enumerate(ATTRIBUTES):
        assert (maps[b, k][on] == ATTRIBUTES[name].index(getattr(obj, name)) + 1).all()
        assert (maps[b, k][RENDERING.ids[b] < 0] == 0).all()
    assert label_grid(maps[b], None, GRID).shape == (5, GRID, GRID)
    assert (label_grid(maps[b], BOXES[b][i], GRID)[4] == i).any()  # the crop is centred on the object


def test_scene_questions_have_exact_answers():
    rng = np.random.default_rng(0)
    for b, scene in enumerate(SCENES):
        oracle = Oracle(scene)
        for question, box in scene_questions(scene, BOXES[b], rng, local=False):
            assert box is None and question.answer in question.choices
            if question.text.startswith("is there a "):
                look = phrase_filter(question.text[len("is there a "):])
                assert question.answer == ("yes" if oracle.exists(**look) else "no")
                assert set(question.attend) == {i for i in oracle.select(**look) if i in BOXES[b]}
        for question, box in scene_questions(scene, BOXES[b], rng, local=True):
            [i] = [k for k, v in BOXES[b].items() if v == box][:1]
            if question.text.startswith("is this a "):
                match = scene.objects[i].matches(**phrase_filter(question.text[len("is this a "):]))
                assert question.answer == ("yes" if match else "no")


def test_vqa_model_outputs_and_training_batch():
    config = VqaConfig(batch=10, pool=8)
    images, tokens, answers, labels, attend = VqaData(config).batch(0)
    assert images.shape == (10, 3, 64, 64) and labels.shape == (10, 5, GRID, GRID) and len(attend) == 10
    logits, parts, scores = VqaModel(config)(images.float() / 127.5 - 1, tokens)
    assert logits.shape == (10, len(ANSWERS)) and scores.shape == (10, GRID * GRID)
    assert parts.shape == (10, sum(1 + len(v) for v in ATTRIBUTES.values()), GRID, GRID)
    assert encode_questions(["is there a red cube", "how many cubes are there"]).shape == (2, 5)


def test_questions_written_from_each_kind_of_edit():
    attribute = EditInstruction("attribute", "a red cube", "red cube", "blue cube", "red cube", "a blue cube")
    questions = edit_questions(attribute, (1, 2, 3, 4))
    assert [(q.text, q.answer, box) for q, box in questions] == [
        ("is there a blue cube", "yes", None), ("is there a red cube", "no", None),
        ("is this a blue cube", "yes", (1, 2, 3, 4)), ("is this a red cube", "no", (1, 2, 3, 4)),
        ("what color is this", "blue", (1, 2, 3, 4))]
    with pytest.raises(ValueError, match="needs the region"):
        edit_questions(attribute)
    counting = LayoutEdit("counting", "two red cubes", "one red cube",
                          (("red cube", (0, 0, 5, 5)), ("red cube", (9, 9, 5, 5))), (("red cube", (0, 0, 5, 5)),))
    assert [(q.text, q.answer, box) for q, box in edit_questions(counting)] == [
        ("how many red cubes are there", "one", None), ("is this a red cube", "no", (9, 9, 5, 5))]
    relation = LayoutEdit("relation", "a red cube to the left of a blue cube", "a blue cube to the left of a red cube",
                          (("red cube", (0, 0, 5, 5)), ("blue cube", (9, 9, 5, 5))),
                          (("red cube", (9, 9, 5, 5)), ("blue cube", (0, 0, 5, 5))))
    assert [(q.text, q.answer) for q, _ in edit_questions(relation)][:2] == [
        ("is the blue cube to the left of the red cube", "yes"), ("is the red cube to the left of the blue cube", "no")]
    assert caption_relation("a red cube in front of a blue cube") == "front"
    with pytest.raises(ValueError, match="exactly one relation"):
        caption_relation("two red cubes")


class ScriptedVqa(VqaModel):
    """Answers 'yes' to everything and the first choice otherwise (logits favour 'yes', then 'zero')."""

    def forward(self, images, tokens):
        logits = torch.zeros(len(images), len(ANSWERS))
        logits[:, ANSWERS.index("yes")] = 2.0
        logits[:, ANSWERS.index("blue")] = 1.0
        return logits, None, None


def test_filter_scores_and_keep_rule():
    model = ScriptedVqa(VqaConfig())
    attribute = EditInstruction("attribute", "a red cube", "red cube", "blue cube", "red cube", "a blue cube")
    [verdict] = filter_edits(model, torch.zeros(1, 3, 64, 64, dtype=torch.uint8), [attribute], [(10, 10, 8, 8)])
    # global: yes (right), yes to "is there a red cube" (wrong); local: yes, yes (wrong), blue (right)
    assert verdict.global_score == 0.5 and verdict.local_score == pytest.approx(2 / 3) and not verdict.keep
    [lenient] = filter_edits(model, torch.zeros(1, 3, 64, 64, dtype=torch.uint8), [attribute], [(10, 10, 8, 8)],
                             {**KEEP, "attribute": 0.5})
    assert lenient.keep
    with pytest.raises(ValueError, match="1 images, 2 edits"):
        filter_edits(model, torch.zeros(1, 3, 64, 64, dtype=torch.uint8), [attribute] * 2, [None] * 2)


def test_apply_edit_realises_the_edited_caption_and_faulty_edits_do_not():
    for b, scene in enumerate(SCENES):
        for category in ("object", "attribute", "counting", "relation"):
            edit = grammar_edit(scene, BOXES[b], category, b)
            if isinstance(edit, Rejection):
                continue
            good, bad = apply_edit(scene, BOXES[b], edit), apply_edit(scene, BOXES[b], edit, faulty=True, seed=b)
            if isinstance(edit, EditInstruction):
                assert Oracle(good).exists(**phrase_filter(edit.edited_phrase))
                assert not Oracle(good).exists(**phrase_filter(edit.selected_phrase))
                assert not Oracle(bad).exists(**phrase_filter(edit.edited_phrase))
            elif category == "counting":
                look = phrase_filter(edit.layout0[0][0])
                assert Oracle(good).count(**look) == len(edit.layout1) and Oracle(bad).count(**look) == len(edit.layout0)
            else:
                assert good != scene and bad == scene


def test_precision_recall_hand_case_and_cache(isolated_dirs):
    assert precision_recall([True, True, False, False], [True, False, True, False]) == {
        "precision": 0.5, "recall": 0.5, "kept": 0.5}
    assert np.isnan(precision_recall([False], [True])["precision"])
    config = VqaConfig(steps=2, batch=4, pool=4)
    _, info = load_vqa(config, torch.device("cpu"))
    _, again = load_vqa(config, torch.device("cpu"))
    assert not info["from_cache"] and again["from_cache"]


def test_rendered_edits_and_the_judge_on_a_scripted_filter():
    from tutorlib.vismin.experiment import judge_filter, rendered_edits

    items = rendered_edits(0, 16)
    assert len(items) >= 14
    for category in ("object", "attribute", "counting", "relation"):  # each category has right and faulty edits
        assert {i["correct"] for i in items if i["edit"].category == category} == {True, False}
    for item in items:
        assert item["edited"].shape == (3, 64, 64)
        assert (item["region"] is None) == isinstance(item["edit"], LayoutEdit)
    table = judge_filter(ScriptedVqa(VqaConfig()), items)
    assert table["all"]["edits"] == len(items) and set(table) <= {"object", "attribute", "counting", "relation", "all"}
    # answering "yes" to everything never passes an object or attribute edit ("is there a <old phrase>" -> no)
    assert table["object"]["kept"] == 0.0


def test_benchmark_and_finetuned_scores(isolated_dirs):
    from tutorlib.clip import ClipConfig
    from tutorlib.vismin.experiment import benchmark, finetuned_scores
    from tutorlib.vismin.finetune import FinetuneConfig

    bench = benchmark(0, 8, image_size=32)
    assert [i["category"] for i in bench[:4]] == ["object", "attribute", "counting", "relation"]
    assert benchmark(0, 8, image_size=32)[5]["caption1"] == bench[5]["caption1"]
    scores, history = finetuned_scores(ClipConfig.for_profile("smoke"), bench, bench, FinetuneConfig(steps=2),
                                       torch.device("cpu"))
    assert set(scores) == {"object", "attribute", "counting", "relation", "average"}
    assert all(0 <= v <= 100 for row in scores.values() for v in row.values()) and history["loss"]


def test_rendered_training_pairs_come_from_their_own_stream():
    from tutorlib.vismin.experiment import benchmark, rendered_training_pairs

    train, bench = rendered_training_pairs(0, 8, image_size=32), benchmark(0, 8, image_size=32)
    assert len(train) == 8 and [i["category"] for i in train[:4]] == [i["category"] for i in bench[:4]]
    assert not any(torch.equal(t["image0"], b["image0"]) for t in train for b in bench)
    assert torch.equal(rendered_training_pairs(0, 8, image_size=32)[3]["image1"], train[3]["image1"])


def _table(object_, attribute, counting, relation):
    rows = {"object": object_, "attribute": attribute, "counting": counting, "relation": relation}
    table = {c: {"text": g, "image": g, "group": g} for c, g in rows.items()}
    table["average"] = {k: sum(r[k] for r in table.values()) / 4 for k in ("text", "image", "group")}
    return table


def test_score_summary_and_claim_check_hand_cases():
    from tutorlib.vismin.experiment import claim_check, score_summary

    runs = {("vismin", 0): {"scores": _table(60, 50, 20, 0)}, ("vismin", 1): {"scores": _table(70, 54, 30, 2)},
            ("ce-clip", 0): {"scores": _table(0, 0, 0, 0)}}
    summary = score_summary(runs, "vismin")
    assert summary["object"]["group"] == (65.0, 5.0) and summary["relation"]["text"] == (1.0, 1.0)
    before = _table(50, 50, 10, 0)
    claim = claim_check(before, summary)
    # gains: object 15 +- 5 (raised), attribute 2 +- 2 (not raised: gain must exceed the spread), counting 15 +- 5
    assert claim["gains"]["attribute"] == (2.0, 2.0) and claim["raised"] == {"object": True, "attribute": False,
                                                                             "counting": True}
    assert claim["hardest_after"] == "relation" and not claim["held"]
    assert claim_check(_table(40, 40, 10, 0), summary)["held"]
    assert not claim_check(_table(40, 40, 10, 0), score_summary({("vismin", 0): {"scores": _table(60, 60, 30, 40)}},
                                                                "vismin"))["held"]  # relation is not the hardest
    with pytest.raises(ValueError, match="no runs of loss 'plain'"):
        score_summary(runs, "plain")


def test_one_keep_threshold_overrides_the_per_category_ones():
    from tutorlib.vismin.pipeline import PipelineConfig

    assert PipelineConfig().thresholds() == KEEP
    assert PipelineConfig(keep=0.0).thresholds() == {c: 0.0 for c in KEEP}
