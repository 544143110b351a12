"""The pipeline end to end with small untrained models: every source is accounted for, chunks resume after an
interruption, and kept items are minimal-change pairs."""
import copy
import pickle

import pytest
import torch

import tutorlib.vismin.pipeline as pipeline
from tutorlib.clip import WORLD_MEAN, WORLD_STD, Clip, ClipConfig, WorldTokenizer, build_clip
from tutorlib.vismin.grounding import GroundingConfig, PhraseGrounder
from tutorlib.vismin.inpainting import InpaintConfig, Inpainter
from tutorlib.vismin.instructions import EditInstruction, LayoutEdit
from tutorlib.cache import CacheError
from tutorlib.vismin.pipeline import (PipelineConfig, chunk_folder, grow, load_chunk, process_sources, realise,
                                      run_pipeline, save_chunk, weights_hash)
from tutorlib.vismin.vqa import VqaConfig, VqaModel

CONFIG = PipelineConfig(sources=8, chunk=4, sample_steps=2)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    clip_config = ClipConfig.for_profile("smoke")
    clip = Clip(build_clip(clip_config), WorldTokenizer(clip_config.context_length), clip_config.image_size,
                WORLD_MEAN, WORLD_STD)
    return (PhraseGrounder(GroundingConfig()).eval(), Inpainter(InpaintConfig(channels=(16, 16)), clip).eval(),
            VqaModel(VqaConfig()).eval())


def test_grow_hand_cases():
    assert grow((10, 10, 10, 10), 2.0, 64) == (5, 5, 20, 20)
    assert grow((0, 0, 10, 10), 2.0, 64) == (0, 0, 15, 15)  # clipped to the image


def test_relation_edits_erase_then_paint_both_boxes(models):
    _, inpainter, _ = models
    images = torch.full((1, 3, 64, 64), 128, dtype=torch.uint8)
    edit = LayoutEdit("relation", "a red cube to the left of a blue cube", "a blue cube to the left of a red cube",
                      (("red cube", (5, 5, 8, 8)), ("blue cube", (40, 40, 8, 8))),
                      (("red cube", (40, 40, 8, 8)), ("blue cube", (5, 5, 8, 8))))
    out = realise(inpainter, images, [edit], [None], seed=0, steps=2)
    changed = (out[0] != images[0]).any(0)
    assert changed[5:13, 5:13].any() and changed[40:48, 40:48].any() and not changed[25:35, 25:35].any()


def test_phrase_edits_ground_the_selected_phrase_and_paint_the_edited_region_phrase(models, monkeypatch):
    grounder, inpainter, vqa = models
    grounded, painted = [], []
    monkeypatch.setattr(pipeline, "ground", lambda model, images, phrases: grounded.extend(phrases) or
                        (None, [None] * len(phrases), None))
    records = process_sources(CONFIG, range(2), ["object", "attribute"], grounder, inpainter, vqa)["records"]
    edits = [r["edit"] for r in records if "edit" in r]
    assert edits and grounded == [e["SelectedPhrase"] for e in edits]
    assert all(e["EditedRegionPhrase"] == e["EditedPhrase"] != e["SelectedPhrase"] for e in edits)

    def inpaint(model, images, regions, phrases, seed, steps):
        painted.extend(phrases)
        return images

    monkeypatch.setattr(pipeline, "inpaint", inpaint)
    edit = EditInstruction("attribute", "a red cube", "red cube", "blue cube", "blue rubber cube", "a blue cube")
    realise(inpainter, torch.zeros(1, 3, 64, 64, dtype=torch.uint8), [edit], [(5, 5, 8, 8)], seed=0, steps=2)
    assert painted == ["blue rubber cube"]


def test_pipeline_accounts_for_every_source_and_resumes(models, isolated_dirs, monkeypatch):
    grounder, inpainter, vqa = models
    real, calls = pipeline.process_sources, []

    def interrupted(config, indices, *args):
        if indices[0] == 4:
            raise KeyboardInterrupt
        calls.append(indices[0])
        return real(config, indices, *args)

    monkeypatch.setattr(pipeline, "process_sources", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(CONFIG, grounder, inpainter, vqa, {"test": 1})
    monkeypatch.setattr(pipeline, "process_sources",
                        lambda config, indices, *args: calls.append(indices[0]) or real(config, indices, *args))
    result = run_pipeline(CONFIG, grounder, inpainter, vqa, {"test": 1})
    assert calls == [0, 4]  # the finished chunk was not redone
    counts = result.counts()
    assert sum(c["sources"] for c in counts.values()) == 8 and set(counts) == {"object", "attribute", "counting", "relation"}
    for c in counts.values():
        assert c["sources"] == sum(v for k, v in c.items() if k != "sources")
    for record in result.records:
        assert ("stage" in record) == ("reason" in record)
        if record.get("stage") == "filter":
            assert record["edited_image"].shape == (3, 64, 64)
    for item in result.kept():
        assert item["image0"].shape == item["image1"].shape == (3, 64, 64) and item["caption0"] != item["caption1"]
    result.to_json(isolated_dirs / "records.json")
    assert (isolated_dirs / "records.json").stat().st_size > 0


class PlantedPickle:
    """Unpickling this object creates the file `path`: a stand-in for code a crafted cache file would run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_planted_pickle_chunk_is_an_error_and_runs_no_code(models, isolated_dirs):
    folder = chunk_folder(CONFIG, *models, {"test": 1})
    folder.mkdir(parents=True)
    marker = isolated_dirs / "code-ran"
    torch.save({"records": PlantedPickle(marker)}, folder / "chunk-000000.safetensors")  # a torch pickle
    with pytest.raises(CacheError, match=r"chunk-000000.safetensors is not a chunk this library wrote.*rm "):
        run_pipeline(CONFIG, *models, {"test": 1})
    pickle.dump(PlantedPickle(marker), (folder / "plain.pickle").open("wb"))
    with pytest.raises(CacheError, match="plain.pickle is not a chunk"):
        load_chunk(folder / "plain.pickle")
    assert not marker.exists()


def fake_chunk(config, indices, *args):
    """A processed chunk without running the models: every source rejected at the instruction stage."""
    records = [{"index": i, "category": "object", "stage": "instruction", "reason": "test", "score": 0.5}
               for i in indices]
    return {"records": records, "sources": torch.zeros(len(indices), 3, 4, 4, dtype=torch.uint8),
            "edited": torch.zeros(0, 3, 4, 4, dtype=torch.uint8), "edited_rows": []}


def test_changed_weights_recompute_the_chunks(models, isolated_dirs, monkeypatch):
    grounder, inpainter, vqa = models
    calls = []
    monkeypatch.setattr(pipeline, "process_sources", lambda config, indices, *args:
                        calls.append(indices[0]) or fake_chunk(config, indices, *args))
    first = run_pipeline(CONFIG, grounder, inpainter, vqa, {"test": 1})
    assert [r["index"] for r in first.records] == list(range(8)) and first.records[0]["score"] == 0.5
    assert torch.equal(first.records[0]["source_image"], torch.zeros(3, 4, 4, dtype=torch.uint8))
    run_pipeline(CONFIG, grounder, inpainter, vqa, {"test": 1})
    assert calls == [0, 4]  # same weights: both chunks loaded
    changed = copy.deepcopy(vqa)
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-3
    assert weights_hash(changed) != weights_hash(vqa) and weights_hash(copy.deepcopy(vqa)) == weights_hash(vqa)
    run_pipeline(CONFIG, grounder, inpainter, changed, {"test": 1})
    assert calls == [0, 4, 0, 4]  # same configs, other weights: recomputed


def test_explorer_shows_each_category_and_rejects_bad_input(models):
    import matplotlib

    matplotlib.use("Agg")
    from tutorlib.vismin.explore import edit_explorer, explore_edit

    grounder, inpainter, vqa = models
    for category in ("object", "counting", "relation"):
        figure = explore_edit(CONFIG, grounder, inpainter, vqa, index=3, category=category)
        text = figure.axes[2].texts[0].get_text()
        assert f"category: {category}" in text and ("kept" in text or "rejected at" in text)
    with pytest.raises(ValueError, match="unknown category 'size'"):
        explore_edit(CONFIG, grounder, inpainter, vqa, 0, "size")
    assert edit_explorer(CONFIG, grounder, inpainter, vqa).children


def test_a_chunk_with_a_flipped_byte_is_an_error(tmp_path):
    chunk = fake_chunk(CONFIG, range(4))
    chunk["sources"][1, 0, 2, 2] = 200
    path = tmp_path / "chunk-000000.safetensors"
    save_chunk(chunk, path)
    loaded = load_chunk(path)
    assert torch.equal(loaded["sources"], chunk["sources"]) and loaded["records"] == chunk["records"]
    data = bytearray(path.read_bytes())
    data[data.rindex(200)] ^= 0x01  # the last byte of the image data: the pixel set above
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError, match=r"chunk-000000.safetensors does not match the checksum.*rm "):
        load_chunk(path)
