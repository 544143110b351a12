"""tutorlib.idc: masks, losses, hard negatives, decoding, metrics, the oracle's check, data loading, explorer."""
import json
import math

import matplotlib
import pytest
import torch

from tutorlib.formats import FormatError, write_clevr_change
from tutorlib.idc import IdcConfig, attention_mask, load_change_data
from tutorlib.idc.data import DISTRACTOR, MASK, encode_captions
from tutorlib.idc.decoding import beam_decode, decode, greedy_decode
from tutorlib.idc.evaluate import changed_object, coco_scores, java_available, oracle_check, parse_change
from tutorlib.idc.experiment import summarise
from tutorlib.idc.features import GridCnn, GridCnnConfig, cell_labels, load_grid_cnn
from tutorlib.idc.model import build_model
from tutorlib.idc.negatives import HardNegatives, swap_negatives, tfidf_neighbours
from tutorlib.idc.pretraining import LOSSES, fda_logits, mask_tokens, mvcl_logits, region_mask, sample_batch
from tutorlib.world.views.change_pairs import ChangePairs

matplotlib.use("Agg")
CONFIG = IdcConfig.for_profile("smoke").replace(n_negatives=4)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pairs():
    return ChangePairs(20, size=32, seed=1)


@pytest.fixture(scope="module")
def folder(pairs, tmp_path_factory):
    return write_clevr_change(pairs, tmp_path_factory.mktemp("idc") / "clevr_change")


@pytest.fixture(scope="module")
def data(folder, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUTORLIB_DATA", str(tmp_path_factory.mktemp("data")))
        torch.manual_seed(0)
        cnn = GridCnn(GridCnnConfig(image_size=32, grid=2, width=8))
        return load_change_data(folder, cnn.features, "untrained grid CNN")


@pytest.fixture(scope="module")
def vocab(data):
    return data.vocabulary()


@pytest.fixture(scope="module")
def model(data, vocab):
    return build_model(CONFIG, data.features.shape[-1], data.features.shape[-2], len(vocab), vocab.pad).eval()


def test_data_features_captions_and_examples(data, pairs):
    # 32 px halved 4 times: a 2 x 2 grid, 4 cells, of 64 channels (width 8, doubled 3 times)
    assert data.features.shape == (20, 3, 4, 64)
    assert data.change_captions[3] == pairs[3]["change_captions"] and data.change_types[3] == pairs[3]["change_type"]
    train = data.examples("train")
    assert len(train) == 2 * data.splits.count("train")
    assert [train.changed(k) for k in range(4)] == [True, False, True, False]
    assert train.change_type(1) == DISTRACTOR and train.references(1) == pairs[0]["no_change_captions"]
    before, after = train.pair_features([0, 1])
    assert torch.equal(before[0], data.features[0, 0]) and torch.equal(after[1], data.features[0, 2])
    assert len(data.examples("train", share=0.25, seed=0)) == 2 * 4
    with pytest.raises(ValueError, match="no items in split 'dev'"):
        data.examples("dev")


def test_missing_image_or_captions_name_what_is_missing(folder, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "sc_images" / "CLEVR_semantic_000004.png").unlink()
    with pytest.raises(FormatError, match="CLEVR_semantic_000004.png: file not found"):
        load_change_data(broken, None, "unused")
    shutil.copytree(folder, tmp_path / "no_captions")
    captions = json.loads((tmp_path / "no_captions" / "change_captions.json").read_text())
    del captions["CLEVR_default_000007.png"]
    (tmp_path / "no_captions" / "change_captions.json").write_text(json.dumps(captions))
    with pytest.raises(FormatError, match=r"change_captions.json: no entry for CLEVR_default_000007.png"):
        load_change_data(tmp_path / "no_captions", None, "unused")
    (tmp_path / "no_captions" / "change_captions.json").unlink()
    with pytest.raises(FormatError, match="change_captions.json: file not found"):
        load_change_data(tmp_path / "no_captions", None, "unused")


def test_cell_labels_by_hand():
    # a 4 x 4 image, 2 x 2 grid: object 0 fills the top-left cell, object 1 one pixel of the top-right cell
    ids = torch.full((1, 4, 4), -1)
    ids[0, :2, :2] = 0
    ids[0, 0, 3] = 1
    attributes = {"color": __import__("numpy").array([[2, 5]]), "shape": __import__("numpy").array([[1, 0]])}
    labels = cell_labels(ids, attributes, grid=2, min_share=0.25)
    assert labels["color"].tolist() == [[3, 6, 0, 0]] and labels["shape"].tolist() == [[2, 1, 0, 0]]
    assert cell_labels(ids, attributes, grid=2, min_share=0.5)["color"].tolist() == [[3, 0, 0, 0]]


def test_grid_cnn_shapes_training_and_cache(isolated_dirs):
    config = GridCnnConfig(image_size=32, grid=4, width=4, steps=3, batch_size=4)
    model, info = load_grid_cnn(config, torch.device("cpu"))
    assert not info["from_cache"] and len(info["history"]["loss"]) >= 1
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    assert model.features(images).shape == (5, 16, 16)  # 3 halvings: width 4, 8, 16
    again, info = load_grid_cnn(config, torch.device("cpu"))
    assert info["from_cache"] and torch.allclose(again.features(images), model.features(images))
    with pytest.raises(ValueError, match="power of 2"):
        GridCnn(GridCnnConfig(image_size=48, grid=4))


def test_attention_masks_by_hand():
    unilm = attention_mask(2, 3, "unilm")
    expected = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    assert torch.equal(unilm, expected.bool())
    assert not attention_mask(2, 3, "full").any()
    assert torch.equal(attention_mask(2, 3, "image_only"), torch.tensor([[0, 0, 1, 1, 1]] * 2 + [[0] * 5] * 3).bool())
    with pytest.raises(ValueError, match="attention must be one of"):
        attention_mask(2, 3, "causal")


def test_unilm_outputs_are_causal_and_images_ignore_text(model, data, vocab):
    before, after = data.features[:2, 0], data.features[:2, 1]
    ids = encode_captions(vocab, ["the red cube moved", "someone added a ball"], CONFIG.max_text)
    changed = ids.clone()
    changed[:, 3] = vocab.index["blue"]
    a, b = model(before, after, ids, "unilm", False), model(before, after, changed, "unilm", False)
    n = model.n_image_tokens
    assert a.shape == (2, n + CONFIG.max_text, CONFIG.d_model)
    assert torch.allclose(a[:, : n + 3], b[:, : n + 3], atol=1e-6)  # images and text before position 3 unchanged
    assert not torch.allclose(a[:, n + 3], b[:, n + 3])
    full_a, full_b = model(before, after, ids, "full"), model(before, after, changed, "full")
    assert not torch.allclose(full_a[:, :n], full_b[:, :n])  # under full attention the images see the text


def test_pseudo_masks_see_only_the_words_before_them(model, data, vocab):
    pair = model.encode_pair(data.features[:1, 0], data.features[:1, 1])
    ids = encode_captions(vocab, ["the red cube moved"], 6)
    changed = ids.clone()
    changed[0, 2] = vocab.index["sphere"]
    a = model.pseudo_mask_outputs(pair, ids, vocab.index[MASK])
    b = model.pseudo_mask_outputs(pair, changed, vocab.index[MASK])
    assert a.shape == (1, 6, CONFIG.d_model)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-6) and not torch.allclose(a[:, 3], b[:, 3])
    # the pseudo mask at position i gives what decoding computes from [w_1..w_(i-1), <mask>]
    decoded = model.cross_modal(pair, torch.cat([ids[:, :2], torch.tensor([[vocab.index[MASK]]])], 1), "unilm", False)
    assert torch.allclose(a[:, 2], decoded[:, -1], atol=1e-5)


def test_mask_tokens_rules(vocab):
    ids = encode_captions(vocab, ["the red cube moved", "nothing has changed"], 8)
    generator = torch.Generator().manual_seed(0)
    inputs, targets = mask_tokens(ids, vocab, 0.0, generator, replace=False)
    chosen = targets != -100
    assert chosen.sum(1).tolist() == [1, 1]  # nothing drawn: one token per caption anyway
    assert (ids[chosen] != vocab.pad).all() and torch.equal(targets[chosen], ids[chosen])
    assert (inputs[chosen] == vocab.index[MASK]).all() and torch.equal(inputs[~chosen], ids[~chosen])
    inputs, targets = mask_tokens(ids, vocab, 1.0, generator)
    assert torch.equal(targets != -100, ids != vocab.pad)  # every real token, never a pad
    mask = region_mask(5, 4, 0.0, generator)
    assert mask.sum(1).tolist() == [1] * 5


def test_contrastive_logits_by_hand():
    eye = torch.eye(3)
    # MVCL: predictions equal the true features (orthonormal), one unmasked prediction along e0
    logits = mvcl_logits(eye[:2], eye[:2], eye[:1], tau=0.5)
    assert torch.allclose(logits, torch.tensor([[2.0, 0.0, 2.0], [0.0, 2.0, 0.0]]))
    # FDA: pair e0; gold caption e0, negatives e1 and -e0
    logits = fda_logits(eye[:1] * 3, torch.stack([eye[0], eye[1], -eye[0]])[None], tau=1.0)
    assert torch.allclose(logits, torch.tensor([[1.0, 0.0, -1.0]]))
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0]))
    assert loss.item() == pytest.approx(-math.log(math.e / (math.e + 1 + math.exp(-1))))


def test_swaps_and_retrieved_negatives():
    swaps = swap_negatives("the red ball moved")
    assert "the blue ball moved" in swaps and "the red cube moved" in swaps and "the red ball added" in swaps
    assert "the red sphere moved" not in swaps and "the red ball moved" not in swaps  # same meaning is no negative
    assert swap_negatives("nothing has changed") == []
    captions = ["the red cube moved", "the red cube is gone", "nothing has changed", "the blue cube moved"]
    neighbours = tfidf_neighbours(captions, 1)
    assert neighbours[:, 0].tolist()[0] in (1, 3) and neighbours[2, 0] != 2
    negatives = HardNegatives(captions)
    rng = __import__("numpy").random.default_rng(0)
    drawn = negatives.sample("the red cube moved", ["the red cube moved", "the blue cube moved"], 6, rng)
    assert len(drawn) == 6 and not {"the red cube moved", "the blue cube moved"} & set(drawn)


def test_every_loss_is_finite_and_batches_are_deterministic(model, data, vocab):
    examples = data.examples("train")
    negatives = HardNegatives([c for k in range(len(examples)) for c in examples.references(k)])
    batch = sample_batch(examples, vocab, CONFIG, 3, torch.device("cpu"), negatives)
    again = sample_batch(examples, vocab, CONFIG, 3, torch.device("cpu"), negatives)
    assert torch.equal(batch["candidates"], again["candidates"]) and batch["candidates"].shape[1] == 5
    assert torch.equal(batch["candidates"][:, 0], batch["ids"])
    for name, loss in LOSSES.items():
        value = loss(model, batch, vocab, CONFIG, torch.Generator().manual_seed(0))
        assert value.ndim == 0 and torch.isfinite(value), name
    from tutorlib.idc.finetune import finetune_loss

    for rate in (0.0, 0.15):  # pseudo masks on every word, and the paper's random masking
        caption, classifier = finetune_loss(model, batch, vocab, CONFIG.replace(finetune_mask_prob=rate),
                                            torch.Generator().manual_seed(0))
        assert torch.isfinite(caption) and torch.isfinite(classifier)


def test_training_lowers_losses_and_decoders_agree(data, vocab):
    from tutorlib.idc.finetune import change_accuracy, finetune
    from tutorlib.idc.pretraining import pretrain

    config = CONFIG.replace(pretrain_steps=12, finetune_steps=30, lr=3e-3, warmup=5, dropout=0.0)
    model = build_model(config, data.features.shape[-1], data.features.shape[-2], len(vocab), vocab.pad)
    history = pretrain(model, data.examples("train"), vocab, config, torch.device("cpu"))
    assert set(history.values) <= {"mlm", "mvcl", "fda"} and history.values
    examples = data.examples("train")
    history = finetune(model, examples, vocab, config, torch.device("cpu"))
    losses = history.series("caption")[1]
    assert sum(losses[-3:]) < sum(losses[:3])
    from tutorlib.idc.finetune import change_predictions

    predicted = change_predictions(model, examples, torch.device("cpu"))
    truth = [examples.changed(k) for k in range(len(examples))]
    assert predicted.shape == (len(examples),)
    assert change_accuracy(model, examples, torch.device("cpu")) == pytest.approx((predicted == truth).mean())
    before, after = examples.pair_features(range(6))
    greedy = greedy_decode(model, before, after, vocab, config.max_text)
    assert greedy == beam_decode(model, before, after, vocab, config.max_text, beam=1)
    beams = decode(model, before, after, vocab, config.max_text, "beam", beam=3, batch=4)
    assert len(beams) == 6 and all(isinstance(c, str) for c in beams)
    with pytest.raises(ValueError, match="method must be"):
        decode(model, before, after, vocab, 5, "sample")


def test_oracle_accepts_every_reference_and_rejects_wrong_changes(pairs):
    for k in range(len(pairs)):
        item = pairs[k]
        for caption in item["change_captions"]:
            assert oracle_check(caption, item["change_type"], item["scene_before"], item["scene_after"])["correct"], caption
        assert oracle_check("nothing has changed", DISTRACTOR, item["scene_before"], item["scene_distractor"])["correct"]
        assert not oracle_check("nothing has changed", item["change_type"], item["scene_before"], item["scene_after"])["type"]
    color = next(pairs[k] for k in range(len(pairs)) if pairs[k]["change_type"] == "color")
    scene, index = changed_object("color", color["scene_before"], color["scene_after"])
    new = color["scene_after"].objects[index].color
    wrong = next(c for c in ("red", "blue") if c != new)
    caption = color["change_captions"][0].rsplit(" ", 1)[0] + " " + wrong  # "... changed to <wrong colour>"
    check = oracle_check(caption, "color", color["scene_before"], color["scene_after"])
    assert check["type"] and not check["correct"]
    assert parse_change("the big shiny ball moved") == {"type": "move", "new": None,
                                                         "object": {"size": "large", "material": "metal", "shape": "sphere"}}
    assert parse_change("the dragon moved") is None and parse_change("hello") is None
    assert oracle_check("the cube moved", "move", None, None) is None


def test_coco_scores():
    refs = [["the red cube moved", "someone moved the red cube"], ["nothing has changed", "there is no change"]]
    perfect = coco_scores(["the red cube moved", "nothing has changed"], refs, meteor=False)
    assert perfect["BLEU-4"] == pytest.approx(100.0, abs=1e-3) and perfect["ROUGE-L"] == pytest.approx(100.0)
    assert perfect["METEOR"] is None
    worse = coco_scores(["the blue sphere is gone", "nothing has changed"], refs, meteor=False)
    assert worse["CIDEr"] < perfect["CIDEr"] and worse["BLEU-4"] < 100.0
    with pytest.raises(ValueError, match="one prediction per reference list"):
        coco_scores(["a"], refs)
    if java_available():
        assert coco_scores(["the red cube moved", "nothing has changed"], refs)["METEOR"] > 50.0


def test_summarise_means_and_spreads():
    def result(cider, correct):
        scores = {"BLEU-4": 1.0, "METEOR": None, "ROUGE-L": 2.0, "CIDEr": cider}
        oracle = {"total": {"correct": correct}, "changed": {"correct": correct / 2}}
        return {"scores": {"total": scores}, "oracle": oracle, "change_accuracy": 0.5}

    table = summarise({("all", 1.0, 0): result(10.0, 50.0), ("all", 1.0, 1): result(30.0, 70.0)})
    row = table[("all", 1.0)]
    assert row["CIDEr"] == (20.0, 10.0, 2) and row["oracle correct"] == (60.0, 10.0, 2)
    assert row["oracle on changes"] == (30.0, 5.0, 2)
    assert row["METEOR"] is None and row["changed? accuracy"] == (50.0, 0.0, 2)


def test_oracle_accuracy_over_all_changed_and_each_type():
    from tutorlib.idc.evaluate import oracle_accuracy

    checks = [{"type": True, "correct": True}, {"type": True, "correct": False},
              {"type": False, "correct": False}, {"type": True, "correct": True}]
    shares = oracle_accuracy(checks, ["color", "color", "move", DISTRACTOR])
    assert shares["total"] == {"type": 75.0, "correct": 50.0}
    assert shares["changed"]["correct"] == pytest.approx(100 / 3) and shares["changed"]["type"] == pytest.approx(200 / 3)
    assert shares["color"]["correct"] == 50.0 and shares[DISTRACTOR]["correct"] == 100.0
    assert "changed" not in oracle_accuracy(checks[3:], [DISTRACTOR]) and oracle_accuracy([None], ["move"]) is None


def test_fine_tuning_steps_per_share_and_single_task_ablation():
    config = IdcConfig.for_profile("standard")
    assert config.steps_for(1.0) == config.finetune_steps and config.steps_for(0.1) == config.reduced_finetune_steps
    alone = {task: config.task_alone(task) for task in ("mlm", "mvcl", "fda")}
    # weights 8 : 1 : 2 of 400 steps
    assert [alone[t].pretrain_steps for t in ("mlm", "mvcl", "fda")] == [291, 36, 73]
    assert alone["fda"].tasks == ("fda",) and alone["fda"].finetune_steps == config.finetune_steps


def test_claim_check_needs_gains_beyond_the_spread():
    from tutorlib.idc.experiment import claim_check

    row = lambda mean, std: {"CIDEr": (mean, std, 2)}  # noqa: E731
    table = {("no pretraining", 1.0): row(100.0, 1.0), ("all", 1.0): row(103.0, 1.0),
             ("no pretraining", 0.1): row(80.0, 1.0), ("all", 0.1): row(90.0, 2.0)}
    claim = claim_check(table, "all", (1.0, 0.1))
    assert claim["gain_full"] == 3.0 and claim["gain_reduced"] == 10.0 and claim["spread_reduced"] == 3.0
    assert claim["held"]
    table[("all", 1.0)] = row(103.0, 5.0)  # a gain inside the spread is no gain
    assert not claim_check(table, "all", (1.0, 0.1))["held"]


def test_explorer_draws_and_validates(data, vocab, model):
    from tutorlib.idc.explore import difference_map, explore_pair, feature_contrast, idc_explorer

    assert difference_map(data, 0, 1).shape == (2, 2)
    assert difference_map(data, 0, 0).max() == 0.0
    figure = explore_pair(data, {"scratch": model}, vocab, CONFIG, change_type="any", pair=0, second="distractor")
    assert len(figure.axes) == 3 and figure.axes[1].get_title() == "distractor"
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        explore_pair(data, {"scratch": model}, vocab, CONFIG, model="nope")
    with pytest.raises(ValueError, match="no test pair has change type 'spin'"):
        explore_pair(data, {"scratch": model}, vocab, CONFIG, change_type="spin")
    panel = idc_explorer(data, {"scratch": model}, vocab, CONFIG)
    assert {c.description for c in panel.children[:-1]} == {"change", "pair", "second", "model", "decoding"}
    assert set(feature_contrast(data)) <= {"color", "material", "add", "drop", "move", "distractor"}


def test_empty_prediction_scores_as_the_empty_string():
    # Corpus BLEU over both pairs: the empty caption adds no guessed n-grams (precisions 4/4, 3/3, 2/2, 1/1) but
    # its closest reference length 3: BP = exp(1 - 7/4), BLEU-4 = 47.237 (a junk word "x" would give 63.4).
    scores = coco_scores(["a red cube moved", ""], [["a red cube moved"], ["the blue sphere"]], meteor=False)
    assert scores["BLEU-4"] == pytest.approx(100 * math.exp(-0.75), abs=1e-3)
    assert scores["ROUGE-L"] == pytest.approx(50.0)


def test_ptb_tokenize_as_coco_caption():
    from tutorlib.idc.evaluate import ptb_tokenize

    # Outputs of coco-caption's Stanford PTBTokenizer (3.4.1, -lowerCase) with its punctuation list removed.
    assert ptb_tokenize("The cube's color changed.") == ["the", "cube", "'s", "color", "changed"]
    assert ptb_tokenize("It doesn't move; the small-sized sphere (left) moved!") == \
        ["it", "does", "n't", "move", "the", "small-sized", "sphere", "-lrb-", "left", "-rrb-", "moved"]
    assert ptb_tokenize('There are 3.5 cubes, 1,000 "left-most" items -- 50% blue/green') == \
        ["there", "are", "3.5", "cubes", "1,000", "left-most", "items", "50", "%", "blue/green"]
    assert ptb_tokenize("cubes' colors aren't I'm we're") == ["cubes", "colors", "are", "n't", "i", "'m", "we", "'re"]
    # The world tokenizer drops digits and splits hyphens; with "ptb" they count as in the official evaluation.
    refs = [["the small-sized cube moved 2 steps."]]
    assert coco_scores(["The small-sized cube moved 2 steps"], refs, meteor=False, tokenizer="ptb")["BLEU-4"] == \
        pytest.approx(100.0, abs=1e-3)
    with pytest.raises(ValueError, match="unknown tokenizer 'nltk'"):
        coco_scores(["a"], [["a"]], meteor=False, tokenizer="nltk")
