"""Notebook 01 (SSCR): text, counterfactuals, metrics, editor, explainer, detector, training and the widget."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from dataclasses import replace  # noqa: E402

from tutorlib.formats import FormatError  # noqa: E402
from tutorlib.sscr.config import SscrConfig  # noqa: E402
from tutorlib.sscr.counterfactual import counterfactual, coverage, new_object_words, swap_words  # noqa: E402
from tutorlib.sscr.data import DialogueTensors, load_split, to_signed  # noqa: E402
from tutorlib.sscr.detector import Detector, detect, detector_loss  # noqa: E402
from tutorlib.sscr.editor import (Discriminator, Editor, aux_bce, change_l1, hinge_d, hinge_g,  # noqa: E402
                                  kl_loss, r1_penalty)
from tutorlib.sscr.explainer import Explainer  # noqa: E402
from tutorlib.sscr.explore import draw_instructions, show_sequences  # noqa: E402
from tutorlib.sscr.metrics import per_sample_prf, relation_agreement, score  # noqa: E402
from tutorlib.sscr.text import encode, instruction_vocabulary  # noqa: E402
from tutorlib.sscr.train import (GanParts, batch_indices, counterfactual_ids, draw_dialogues, gan_step,  # noqa: E402
                                 train_editor)
from tutorlib.world.views import EditingDialogues  # noqa: E402

TINY = SscrConfig.for_profile("smoke")


@pytest.fixture(scope="module")
def vocab():
    return instruction_vocabulary()


@pytest.fixture(scope="module")
def dialogues():
    return EditingDialogues(6, size=32, seed=5, progress=False)


@pytest.fixture(scope="module")
def data(dialogues, vocab):
    return DialogueTensors.from_dataset(dialogues, vocab)


# ---------------------------------------------------------------------------------------------------------
# Config and text
# ---------------------------------------------------------------------------------------------------------
def test_profiles_grow_and_keep_the_seed():
    smoke, standard, full = (SscrConfig.for_profile(p, seed=3) for p in ("smoke", "standard", "full"))
    assert smoke.seed == standard.seed == full.seed == 3
    assert smoke.baseline_steps < standard.baseline_steps < full.baseline_steps
    assert full.image_size > standard.image_size and 1.0 in standard.shares and min(standard.shares) < 1.0
    assert standard.with_seed(4).seed == 4
    with pytest.raises(ValueError, match="unknown profile"):
        SscrConfig.for_profile("huge")


def test_encode_pads_and_reports_unknown_words(vocab):
    encoded = encode(vocab, ["add a red cube at the center", "add a pink blob"])
    first = [vocab.index[w] for w in ["<bos>", "add", "a", "red", "cube", "at", "the", "center", "<eos>"]]
    assert encoded.ids[0].tolist() == first and encoded.lengths.tolist() == [9, 6]
    assert encoded.ids[1].tolist()[3:6] == [vocab.unk, vocab.unk, vocab.index["<eos>"]]
    assert encoded.ids[1].tolist()[6:] == [vocab.pad] * 3
    assert encoded.unknown == [[], ["pink", "blob"]]
    assert encoded.report() == "instruction 1: unknown words ['pink', 'blob'] were read as <unk>"
    cut = encode(vocab, ["add a red cube at the center"], max_len=5)
    assert cut.ids[0].tolist()[-1] == vocab.index["<eos>"] and cut.ids.shape == (1, 5)


def test_every_generated_instruction_is_in_the_vocabulary(dialogues, vocab):
    encoded = encode(vocab, [t for d in dialogues.instructions for t in d])
    assert not any(encoded.unknown)


# ---------------------------------------------------------------------------------------------------------
# Counterfactuals
# ---------------------------------------------------------------------------------------------------------
def test_swap_words_by_hand():
    text = "add a green cylinder in front of the red cube on the right"
    assert swap_words(text, color="blue") == "add a blue cylinder in front of the red cube on the right"
    assert swap_words(text, shape="sphere") == "add a green sphere in front of the red cube on the right"
    assert swap_words(text, flip_lateral=True) == "add a green cylinder in front of the red cube on the left"
    assert swap_words(text, flip_depth=True) == "add a green cylinder behind the red cube on the right"
    assert swap_words("add a red cube behind it on the left", flip_depth=True) == \
        "add a red cube in front of it on the left"
    assert swap_words("add a red cube in the back left", flip_depth=True, flip_lateral=True) == \
        "add a red cube in the front right"
    assert new_object_words(text) == ("green", "cylinder")


def test_counterfactuals_change_the_instruction_and_keep_the_reference():
    rng = np.random.default_rng(0)
    text = "add a green cylinder in front of the red cube on the right"
    outs = [counterfactual(text, rng) for _ in range(50)]
    assert all(o != text for o in outs)
    assert all("the red cube" in o for o in outs)  # the named reference is untouched
    assert {new_object_words(o)[0] for o in outs} - {"green"}  # colours do change
    assert any("behind" in o or "left" in o for o in outs)  # relations do change
    again = np.random.default_rng(0)
    assert outs[:5] == [counterfactual(text, again) for _ in range(5)]
    assert counterfactual("hello there", rng) == "hello there"


# ---------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------
def test_coverage_by_hand():
    dialogues = [["add a red cube at the center", "add a blue sphere behind it on the left"],
                 ["add a red cube at the center", "add a red sphere behind it on the left"]]
    result = coverage(dialogues, np.random.default_rng(0), samples=200)
    # 3 of the 24 entities appear (red cube twice): the fewest is 0, the median 0
    assert result["fewest turns per entity"] == 0 and result["median turns per entity"] == 0
    # a colour-only swap "blue sphere" <-> "red sphere" gives the other dialogue's text; a swap of the first
    # turn never does (no text "add a <other> cube at the center"); so the share is strictly between 0 and 100
    assert 0 < result["counterfactuals seen in training (%)"] < 100
    with pytest.raises(ValueError, match="at least one"):
        coverage([], np.random.default_rng(0))


def test_precision_recall_f1_by_hand():
    detected = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=torch.float)
    labels = torch.tensor([[1, 0, 1, 0], [1, 0, 0, 0], [1, 0, 1, 0]], dtype=torch.float)
    p, r, f = per_sample_prf(detected, labels)
    assert p.tolist() == [0.5, 0.0, 1.0] and r.tolist() == [0.5, 0.0, 1.0]
    assert f.tolist() == pytest.approx([0.5, 0.0, 1.0])


def test_relation_agreement_and_rsim_by_hand():
    labels = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    where = torch.tensor([[[10.0, 10.0], [20.0, 30.0], [30.0, 20.0], [0.0, 0.0]]])
    # The drawing swaps the rows of entities 1 and 2: of the 6 ordered pairs x 2 axes = 12 entries, the two
    # y entries of the pair (1, 2) disagree. GeNeVA adds the 3 x 2 diagonal entries (each object against the
    # centre, 64 of 128): all objects are left of and above it in both images, so 16 of 18 agree.
    drawn = where.clone()
    drawn[0, 1, 1], drawn[0, 2, 1] = 20.0, 30.0
    assert relation_agreement(labels, drawn, labels, where).tolist() == pytest.approx([16 / 18])
    assert relation_agreement(labels, drawn, labels, where, mode="pairs").tolist() == pytest.approx([10 / 12])
    # Only entities 0 and 1 detected: recall 2/3, their relations agree (and their sides of the centre).
    found = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    for mode in ("geneva", "pairs"):
        assert relation_agreement(found, drawn, labels, where, mode=mode).tolist() == [1.0]
    s = score(found, drawn, labels, where)
    assert s["recall"] == pytest.approx(100 * 2 / 3) and s["rsim"] == pytest.approx(100 * 2 / 3)
    assert s["precision"] == pytest.approx(100.0) and s["f1"] == pytest.approx(80.0)
    assert score(labels, drawn, labels, where)["rsim"] == pytest.approx(100 * 16 / 18)
    assert score(labels, drawn, labels, where, mode="pairs")["rsim"] == pytest.approx(100 * 10 / 12)
    with pytest.raises(ValueError, match="mode must be"):
        relation_agreement(labels, drawn, labels, where, mode="graph")


def test_relation_agreement_counts_the_side_of_the_centre():
    one = torch.tensor([[1.0, 0.0]])
    reference = torch.tensor([[[20.0, 20.0], [0.0, 0.0]]])
    # one shared object, drawn on the other side of the centre (64, 64) on both axes: GeNeVA 0 of 2, pairs 1
    opposite = torch.tensor([[[100.0, 100.0], [0.0, 0.0]]])
    assert relation_agreement(one, opposite, one, reference).tolist() == [0.0]
    assert relation_agreement(one, opposite, one, reference, mode="pairs").tolist() == [1.0]
    assert score(one, opposite, one, reference)["rsim"] == 0.0
    assert score(one, opposite, one, reference, mode="pairs")["rsim"] == 100.0
    # on the other side in x only: 1 of 2 entries agree
    assert relation_agreement(one, torch.tensor([[[100.0, 20.0], [0.0, 0.0]]]), one, reference).tolist() == [0.5]
    # two objects in the same order, one moved across the centre: 7 of 8 entries agree; pairs-only sees nothing
    both = torch.tensor([[1.0, 1.0]])
    reference = torch.tensor([[[10.0, 10.0], [100.0, 100.0]]])
    moved = torch.tensor([[[70.0, 10.0], [100.0, 100.0]]])
    assert relation_agreement(both, moved, both, reference).tolist() == [7 / 8]
    assert relation_agreement(both, moved, both, reference, mode="pairs").tolist() == [1.0]
    # no shared object: GeNeVA returns rsim 0 (agreement 0 here); pairs-only agreement 1, rsim 0 (recall 0)
    other = torch.tensor([[0.0, 1.0]])
    assert relation_agreement(other, moved, one, reference).tolist() == [0.0]
    assert relation_agreement(other, moved, one, reference, mode="pairs").tolist() == [1.0]
    assert score(other, moved, one, reference)["rsim"] == score(other, moved, one, reference, mode="pairs")["rsim"] == 0


def _geneva_construct_graph(coords):
    """GeNeVA's construct_graph (geneva/metrics/inception_localizer.py) for 2-d coordinates, loop for loop."""
    n = len(coords)
    graph = np.zeros((2, n, n))
    for i in range(n):
        ref_x, ref_y = coords[i]
        for j in range(n):
            query_x, query_y = (0.5, 0.5) if i == j else coords[j]
            graph[0, i, j] = 1 if ref_x > query_x else -1 if ref_x < query_x else 0
            graph[1, i, j] = 1 if ref_y > query_y else -1 if ref_y < query_y else 0
    return graph


def test_relation_agreement_matches_genevas_loop_on_random_scenes():
    rng = np.random.default_rng(0)
    detected, labels = (torch.tensor(rng.random((40, 24)) < 0.3, dtype=torch.float) for _ in range(2))
    # positions on a coarse grid, so that ties (equal coordinates, objects on the centre line) occur
    drawn, where = (torch.tensor(rng.integers(0, 5, (40, 24, 2)) * 32.0) for _ in range(2))
    ours = relation_agreement(detected, drawn, labels, where)
    for k in range(40):
        shared = ((detected[k] * labels[k]) > 0).numpy()
        if not shared.any():
            assert ours[k] == 0.0
            continue
        a = _geneva_construct_graph(drawn[k].numpy()[shared] / 128)
        b = _geneva_construct_graph(where[k].numpy()[shared] / 128)
        assert float(ours[k]) == pytest.approx((a == b).mean())


# ---------------------------------------------------------------------------------------------------------
# Models and losses
# ---------------------------------------------------------------------------------------------------------
def test_losses_by_hand():
    real, wrong, fake = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.0]), torch.tensor([0.5, -0.5])
    # relu(1 - real) = [0, 1] -> 0.5; relu(1 + wrong) = [0, 1] -> 0.5; relu(1 + fake) = [1.5, 0.5] -> 1.0
    assert hinge_d(real, wrong, fake).item() == pytest.approx(0.5 + 0.5 * (0.5 + 1.0))
    assert hinge_g(fake).item() == pytest.approx(0.0)
    assert kl_loss(torch.zeros(3, 4), torch.zeros(3, 4)).item() == pytest.approx(0.0)
    assert kl_loss(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(1.0)
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.tensor([1.0, 2.0, 2.0])
    assert r1_penalty(x @ w, x).item() == pytest.approx(0.5 * 9.0)
    assert aux_bce(torch.zeros(2, 24), torch.ones(2, 24)).item() == pytest.approx(np.log(2))


def test_change_l1_by_hand():
    previous = torch.zeros(1, 3, 2, 2)
    real = previous.clone()
    real[0, :, 0, 0] = 1.0  # the turn changes one pixel of four
    # the whole canvas: 3 errors of 1 over 12 values = 0.25; the changed pixel: 3 errors of 1 over 3 values = 1
    assert change_l1(previous, real, previous).item() == pytest.approx(0.25 + 1.0)
    assert change_l1(real, real, previous).item() == pytest.approx(0.0)
    # no change at all: only the mean over the canvas
    assert change_l1(previous + 0.5, previous, previous).item() == pytest.approx(0.5)


@pytest.mark.parametrize("size", [16, 32])
def test_editor_and_discriminator_shapes(size, vocab):
    config = replace(TINY, image_size=size)
    editor, discriminator = Editor(config, len(vocab)), Discriminator(config)
    ids = encode(vocab, ["add a red cube at the center", "add a blue sphere behind it on the left"] * 3).ids
    ids, lengths = ids.view(3, 2, -1), (ids != 0).sum(-1).view(3, 2)
    states = editor.condition(ids, lengths)
    assert states.shape == (3, 2, config.history_dim)
    previous = torch.zeros(3, 3, size, size)
    canvas, mu, logvar = editor(previous, states[:, 1])
    assert canvas.shape == (3, 3, size, size) and mu.shape == logvar.shape == (3, config.cond_dim)
    assert canvas.abs().max() <= 1.0
    score_, aux = discriminator(canvas, previous, states[:, 1])
    assert score_.shape == (3,) and aux.shape == (3, 24)
    with pytest.raises(ValueError, match="power of two"):
        Editor(replace(TINY, image_size=24), len(vocab))


def test_one_turn_step_matches_the_dialogue_gru(vocab):
    editor = Editor(TINY, len(vocab)).eval()
    ids = encode(vocab, ["add a red cube at the center", "add a blue sphere behind it on the left"]).ids
    lengths = (ids != 0).sum(-1)
    states = editor.condition(ids[None], lengths[None])[0]
    assert torch.allclose(editor.step(ids[1:], lengths[1:], states[:1]), states[1:], atol=1e-6)


def test_explainer_shapes_and_history(data, vocab):
    explainer = Explainer(TINY, len(vocab))
    batch = data.batch(torch.arange(2), "cpu")
    history = explainer.history_states(batch["ids"])
    assert history.shape == (2, 5, TINY.text_dim) and torch.all(history[:, 0] == 0)
    flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
    logits = explainer(flat(batch["previous"]), flat(batch["images"]), flat(history), flat(batch["ids"]))
    assert logits.shape == (10, data.ids.shape[-1] - 1, len(vocab))
    loss = explainer.loss(flat(batch["previous"]), flat(batch["images"]), flat(history), flat(batch["ids"]))
    assert abs(loss.item() - np.log(len(vocab))) < 1.0  # untrained: near uniform
    read = explainer.explain(flat(batch["previous"]), flat(batch["images"]), flat(history), vocab.index["<bos>"], 7)
    assert read.shape == (10, 7)


def test_detector_loss_and_detections():
    detector = Detector(16, channels=4)
    images, objects = torch.zeros(3, 3, 16, 16), torch.zeros(3, 24)
    objects[0, 2] = 1
    coords = torch.zeros(3, 24, 3)
    coords[0, 2] = torch.tensor([64.0, 32.0, 1.0])
    assert detector_loss(detector, images, objects, coords).item() > 0
    found, where = detect(detector, images)
    assert found.shape == (3, 24) and set(found.unique().tolist()) <= {0.0, 1.0}
    assert where.shape == (3, 24, 2) and 0 <= where.min() and where.max() <= 128


# ---------------------------------------------------------------------------------------------------------
# Data, training and drawing
# ---------------------------------------------------------------------------------------------------------
def test_dialogue_tensors(data, dialogues):
    assert data.images.shape == (6, 5, 3, 32, 32) and data.turns == 5 and not data.unknown
    batch = data.batch(torch.tensor([1, 3]), "cpu", torch.Generator().manual_seed(0))
    assert torch.allclose(batch["previous"][:, 0], to_signed(dialogues.background).expand(2, 3, 32, 32), atol=1 / 127.5)
    assert torch.allclose(batch["previous"][:, 1:], batch["images"][:, :-1])
    assert torch.equal(batch["added"].sum(-1), torch.ones(2, 5))  # one new entity per turn
    assert len(data.head(0.5)) == 3 and len(data.head(0.01)) == 1
    with pytest.raises(ValueError, match="share"):
        data.head(0.0)


def test_load_split_names_a_malformed_file(tmp_path, vocab):
    bad = tmp_path / "clevr_train.h5"
    bad.write_text("not hdf5")
    with pytest.raises(FormatError, match="clevr_train.h5.*not an HDF5 file"):
        load_split("train", 4, 32, vocab, path=bad)


def test_real_iclevr_file_is_read_and_resized(tmp_path, dialogues, vocab):
    from tutorlib.formats import write_iclevr

    path = write_iclevr(EditingDialogues(3, size=32, seed=1, progress=False), tmp_path / "clevr_test.h5",
                        show_progress=False)
    data = load_split("test", 2, 16, vocab, path=path)
    assert data.images.shape == (2, 5, 3, 16, 16) and data.background.shape == (3, 16, 16)


def test_batches_depend_on_seed_and_step_only():
    assert torch.equal(batch_indices(50, 8, 1, 7), batch_indices(50, 8, 1, 7))
    assert not torch.equal(batch_indices(50, 8, 1, 7), batch_indices(50, 8, 1, 8))
    assert batch_indices(3, 8, 0, 0).shape == (8,)


def test_gan_step_trains_the_editor_and_leaves_the_explainer_frozen(data, vocab):
    torch.manual_seed(0)
    parts = GanParts.create(TINY, len(vocab), "cpu")
    explainer = Explainer(TINY, len(vocab)).eval().requires_grad_(False)
    before = [p.clone() for p in parts.editor.parameters()]
    frozen = [p.clone() for p in explainer.parameters()]
    history = train_editor(parts, data, TINY, 2, vocab, "cpu", explainer)
    assert {"D", "G adversarial", "G aux", "KL", "R1", "explainer (counterfactual)"} <= set(history.values)
    assert any(not torch.equal(a, b) for a, b in zip(before, parts.editor.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(frozen, explainer.parameters()))


def test_wrong_pairs_are_another_dialogues_state_at_the_same_turn(data, vocab, monkeypatch):
    torch.manual_seed(0)
    parts = GanParts.create(TINY, len(vocab), "cpu")
    judged, judge = [], parts.discriminator.judge
    monkeypatch.setattr(parts.discriminator, "judge", lambda phi, h: judged.append(h.detach().clone()) or judge(phi, h))
    gan_step(parts, data.batch(torch.arange(3), "cpu"), TINY, r1_every=0)
    real, wrong = judged[0].view(3, data.turns, -1), judged[1].view(3, data.turns, -1)
    # as GeNeVA, which rolls the batch at each turn: dialogue i at turn k is judged under dialogue i - 1's state
    # at turn k (not under its own previous turn's)
    assert not torch.equal(real[0], real[1])
    for i in range(3):
        for k in range(data.turns):
            assert torch.equal(wrong[i, k], real[(i - 1) % 3, k]), (i, k)


def _editor_gradient(loss: torch.Tensor, editor: Editor) -> dict[str, float]:
    """Gradient norms of `loss` on the editor's text encoder and on the rest of it (0 where it does not reach)."""
    parts = {"text": list(editor.text.parameters()),
             "drawing": [p for name, p in editor.named_parameters() if not name.startswith("text.")]}
    norms = {}
    for part, params in parts.items():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True) if loss.requires_grad else []
        norms[part] = sum(float(g.norm()) for g in grads if g is not None)
    return norms


def test_counterfactual_term_gives_the_editor_gradients(data, vocab, monkeypatch):
    torch.manual_seed(0)
    parts = GanParts.create(TINY, len(vocab), "cpu")
    explainer = Explainer(TINY, len(vocab)).eval().requires_grad_(False)
    terms, detached, explainer_loss = [], [], explainer.loss

    def recording_loss(previous, image, history, ids):
        loss = explainer_loss(previous, image, history, ids)
        terms.append(_editor_gradient(loss, parts.editor))
        detached.append(_editor_gradient(explainer_loss(previous, image.detach(), history, ids), parts.editor))
        return loss

    monkeypatch.setattr(explainer, "loss", recording_loss)
    batch = data.batch(torch.arange(2), "cpu")
    texts = [data.instructions[i][k] for i in range(2) for k in range(data.turns)]
    gan_step(parts, batch, TINY, explainer, counterfactual_ids(batch, vocab, texts, np.random.default_rng(0)), 0)
    assert len(terms) == 2  # the explainer's loss on the real drawing, then on the counterfactual drawing
    # the counterfactual term reaches the drawing layers and, through editor.step(I'), the text encoder
    assert terms[1]["drawing"] > 0 and terms[1]["text"] > 0
    # the measure can fail: the same term on a detached drawing gives the editor no gradient
    assert detached[1] == {"text": 0.0, "drawing": 0.0}


def test_training_is_deterministic(data, vocab):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        parts = GanParts.create(TINY, len(vocab), "cpu")
        runs.append(train_editor(parts, data, TINY, 2, vocab, "cpu").to_dict())
    assert runs[0] == runs[1]
    batch = data.batch(torch.arange(2), "cpu")
    assert set(gan_step(parts, batch, TINY, r1_every=0)) == {"D", "D aux", "G adversarial", "G aux", "KL",
                                                              "G reconstruction"}


def test_drawing_uses_own_canvases_and_is_seeded(data, vocab):
    editor = Editor(TINY, len(vocab))
    a = draw_dialogues(editor, data.ids[:2], data.lengths[:2], data.background, "cpu", seed=3)
    b = draw_dialogues(editor, data.ids[:2], data.lengths[:2], data.background, "cpu", seed=3)
    assert a.shape == (2, 5, 3, 32, 32) and torch.equal(a, b)
    assert editor.training  # restored after drawing


def test_widget_function_draws_and_reports_unknown_words(data, vocab):
    editor = Editor(TINY, len(vocab))
    figure = draw_instructions(editor, vocab, ["add a red cube at the center", "add a pink blob", ""], data.background)
    assert len(figure.axes) == 2
    assert "pink" in figure._suptitle.get_text() and "blob" in figure._suptitle.get_text()
    with pytest.raises(ValueError, match="at least one instruction"):
        draw_instructions(editor, vocab, ["  "], data.background)
    figure = show_sequences(data, {"editor": draw_dialogues(editor, data.ids, data.lengths, data.background, "cpu")}, 1)
    assert len(figure.axes) == 2 * 5


def test_stage_one_copies_are_independent_twins(data, vocab):
    torch.manual_seed(0)
    parts = GanParts.create(TINY, len(vocab), "cpu")
    train_editor(parts, data, TINY, 1, vocab, "cpu")
    twin = parts.copy()
    for a, b in zip(parts.editor.state_dict().values(), twin.editor.state_dict().values()):
        assert torch.equal(a, b)
    assert twin.opt_g.state_dict()["state"].keys() == parts.opt_g.state_dict()["state"].keys()
    train_editor(twin, data, TINY, 1, vocab, "cpu", first_step=1)
    assert any(not torch.equal(a, b) for a, b in zip(parts.editor.parameters(), twin.editor.parameters()))


# ---------------------------------------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------------------------------------
def _scores(f1_baseline, f1_sscr):
    row = lambda f1: {"precision": f1, "recall": f1, "f1": f1, "rsim": f1 / 2}  # noqa: E731
    return {"baseline": {"detector": row(f1_baseline)}, "SSCR": {"detector": row(f1_sscr)}}


def test_summary_table_and_gains_by_hand():
    from tutorlib.sscr.experiment import format_table, sscr_gains, summarise

    scores = {(0, 1.0): _scores(50, 52), (1, 1.0): _scores(54, 56), (0, 0.2): _scores(30, 40), (1, 0.2): _scores(34, 40)}
    rows = summarise(scores)
    assert rows[(1.0, "baseline", "detector")]["f1"] == pytest.approx((52.0, 2.0))
    assert rows[(0.2, "SSCR", "detector")]["rsim"] == pytest.approx((20.0, 0.0))
    gains = sscr_gains(scores)
    assert list(gains) == [1.0, 0.2]
    # paired differences: 100% -> 2, 2 (mean 2, std 0); 20% -> 10, 6 (mean 8, std 2); rsim is half of F1
    assert gains[1.0]["f1"] == pytest.approx((2.0, 0.0)) and gains[0.2]["f1"] == pytest.approx((8.0, 2.0))
    assert gains[0.2]["rsim"] == pytest.approx((4.0, 1.0))
    table = format_table(rows).splitlines()
    assert len(table) == 5 and "20%" in table[3] and "32.0 ± 2.0" in table[3]


def test_run_share_trains_then_loads_from_the_cache(isolated_dirs, data, vocab):
    from tutorlib.sscr.experiment import METHODS, evaluate_editor, following_rate, run_share, trained_detector
    from tutorlib.sscr.experiment import explainer_word_accuracy

    models, info = run_share(TINY, 0.5, data, vocab, "cpu")
    assert set(models) == {*METHODS, "explainer"} and not info["from_cache"]
    assert info["dialogues"] == 3 and set(info["histories"]) == {*METHODS, "explainer"}
    again, info2 = run_share(TINY, 0.5, data, vocab, "cpu")
    assert info2["from_cache"] and info2["seconds"]["explainer"] == 0.0
    for a, b in zip(models.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    # Stage 3 starts from stage 1: the baseline and SSCR editors differ from it and from each other.
    assert not torch.equal(models["baseline"].start.weight, models["stage 1"].start.weight)
    assert not torch.equal(models["baseline"].start.weight, models["SSCR"].start.weight)

    detector, _ = trained_detector(TINY, data, "cpu")
    result = evaluate_editor(models["SSCR"], data, detector, "cpu")
    assert set(result["detector"]) == {"precision", "recall", "f1", "rsim"}
    assert result["drawings"].shape == data.images.shape
    rate = following_rate(models["SSCR"], data, vocab, detector, "cpu", counterfactual_turn=True)
    assert 0.0 <= rate <= 100.0
    batch = data.batch(torch.arange(len(data)), "cpu")
    accuracy = explainer_word_accuracy(models["explainer"], vocab, batch["previous"], batch["images"], batch["ids"])
    assert set(accuracy) == {"color", "shape"} and all(0 <= v <= 100 for v in accuracy.values())


def test_stage_one_editor_matches_run_share_and_is_cached(isolated_dirs, data, vocab):
    from tutorlib.sscr.experiment import run_share, stage_one_editor

    editor, info = stage_one_editor(TINY, 0.5, data, vocab, "cpu")
    assert not info["from_cache"] and info["history"]["D"][-1][0] == TINY.baseline_steps - 1
    models, _ = run_share(TINY, 0.5, data, vocab, "cpu")
    for a, b in zip(editor.state_dict().values(), models["stage 1"].state_dict().values()):
        assert torch.equal(a, b)
    again, info2 = stage_one_editor(TINY, 0.5, data, vocab, "cpu")
    assert info2["from_cache"] and torch.equal(again.start.weight, editor.start.weight)
    other, _ = stage_one_editor(replace(TINY, lambda_rec=0.0), 0.5, data, vocab, "cpu")
    assert not torch.equal(other.start.weight, editor.start.weight)


def test_detector_report_on_perfect_detections(data, monkeypatch):
    import tutorlib.sscr.experiment as experiment

    truth = (data.objects.reshape(-1, 24), data.coords.reshape(-1, 24, 3)[..., :2])
    monkeypatch.setattr(experiment, "detect", lambda detector, images: truth)
    report = experiment.detector_report(None, data, "cpu")
    assert report["entity accuracy"] == 100.0 and report["exact canvases"] == 100.0
    assert report["f1"] == pytest.approx(100.0) and report["position error (px)"] == 0.0


def test_explorer_panel_fills_examples_and_draws(data, vocab):
    from tutorlib.sscr.explore import editing_explorer

    panel = editing_explorer({"editor": Editor(TINY, len(vocab))}, vocab, data.background, data.instructions[:2])
    controls, boxes = panel.children[0].children, panel.children[1:-1]
    assert [b.value for b in boxes] == data.instructions[0]
    controls[0].value = 1  # pick the second example
    assert [b.value for b in boxes] == data.instructions[1]
    controls[3].click()  # draw: runs draw_instructions without error
