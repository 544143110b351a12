"""The word-learning model of notebook 03: encoders, matchmap similarity, loss, training and evaluation."""
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from matplotlib.figure import Figure

from tutorlib.drawing.word_eval import (edited_negatives_recall, plot_matchmap, ranks_of_positives, recall_at,
                                        retrieval, word_features, word_test)
from tutorlib.drawing.word_train import batch_rows, train_word_model
from tutorlib.drawing.words import (WordConfig, WordModel, margin_rank_loss, matchmap, sample_impostors, similarity,
                                    similarity_matrix)
from tutorlib.world.views.captioned import CONCEPTS

TINY = replace(WordConfig.for_profile("smoke"), dim=8, image_width=4, word_dim=8, speech_width=8, grid=4,
               batch_size=8, steps=3)


def _features():
    # one image with two locations (h=1, w=2), D = 2
    image = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])  # (D, h, w): I(0,0) = (1, 0), I(0,1) = (0, 2)
    caption = torch.tensor([[1.0, 1.0, -1.0], [0.0, 1.0, 0.0]])  # (D, T): A(0) = (1, 0), A(1) = (1, 1), A(2) = (-1, 0)
    return image, caption


def test_matchmap_is_the_dot_product_per_location_and_position():
    image, caption = _features()
    expected = torch.tensor([[[1.0, 1.0, -1.0], [0.0, 2.0, 0.0]]])  # (h=1, w=2, T=3)
    assert torch.equal(matchmap(image, caption), expected)


def test_similarity_is_the_mean_over_valid_positions_of_the_max_over_locations():
    image, caption = _features()
    # max over locations per position: 1, 2, 0; all valid -> 1; the first two -> 1.5
    mask_all, mask_two = torch.tensor([[True, True, True]]), torch.tensor([[True, True, False]])
    assert similarity(image[None], caption[None], mask_all).item() == pytest.approx(1.0)
    assert similarity(image[None], caption[None], mask_two).item() == pytest.approx(1.5)


def test_similarity_matrix_matches_pairwise_similarity():
    generator = torch.Generator().manual_seed(0)
    images, captions = torch.randn(5, 3, 2, 2, generator=generator), torch.randn(4, 3, 6, generator=generator)
    mask = torch.arange(6)[None] < torch.tensor([6, 3, 1, 5])[:, None]
    matrix = similarity_matrix(images, captions, mask, chunk=2)
    assert matrix.shape == (5, 4)
    for i in range(5):
        expected = similarity(images[i:i + 1].expand(4, -1, -1, -1), captions, mask)
        assert torch.allclose(matrix[i], expected, atol=1e-6)


def test_impostors_are_never_the_pair_itself_and_are_reproducible():
    draws = sample_impostors(5, torch.Generator().manual_seed(1))
    assert draws.shape == (5,) and (draws != torch.arange(5)).all() and ((draws >= 0) & (draws < 5)).all()
    assert torch.equal(draws, sample_impostors(5, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="at least 2"):
        sample_impostors(1, torch.Generator())


def test_margin_rank_loss_hand_computed():
    # D = 1, one location, one position: S(I_i, A_j) = x_i * a_j
    images = torch.tensor([2.0, 1.0]).view(2, 1, 1, 1)
    captions = torch.tensor([1.0, 0.25]).view(2, 1, 1)
    mask = torch.ones(2, 1, dtype=torch.bool)
    swap = torch.tensor([1, 0])
    terms = margin_rank_loss(images, captions, mask, swap, swap)
    # positives: S(I0,A0) = 2, S(I1,A1) = 0.25
    # impostor image: [1 + S(I1,A0) - 2]+ = [1 + 1 - 2]+ = 0, [1 + S(I0,A1) - 0.25]+ = 1.25 -> mean 0.625
    # impostor caption: [1 + S(I0,A1) - 2]+ = [1 + 0.5 - 2]+ = 0, [1 + S(I1,A0) - 0.25]+ = 1.75 -> mean 0.875
    assert terms["impostor_image"].item() == pytest.approx(0.625)
    assert terms["impostor_caption"].item() == pytest.approx(0.875)
    assert terms["loss"].item() == pytest.approx(1.5)
    assert "edited" not in terms
    edited = torch.tensor([1.5, 0.0]).view(2, 1, 1, 1)
    with_edits = margin_rank_loss(images, captions, mask, swap, swap, edited)
    # edited: [1 + 1.5 - 2]+ = 0.5, [1 + 0 - 0.25]+ = 0.75 -> mean 0.625
    assert with_edits["edited"].item() == pytest.approx(0.625)
    assert with_edits["loss"].item() == pytest.approx(2.125)


@pytest.mark.parametrize("size", [32, 48, 64, 128])
def test_image_encoder_gives_a_grid_for_any_size_and_dtype(size):
    model = WordModel(TINY).eval()
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    features = model.encode_images(images)
    assert features.shape == (2, TINY.dim, TINY.grid, TINY.grid)
    assert torch.allclose(model.encode_images(images.float() / 255), features, atol=1e-5)


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        WordModel(TINY).encode_images(torch.zeros(2, 1, 32, 32))


def test_text_encoder_masks_padding_and_ignores_it():
    model = WordModel(TINY).eval()
    features, mask = model.encode_captions(["a red cube", "two small blue metal spheres"])
    assert features.shape == (2, TINY.dim, 5) and mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    alone, _ = model.encode_captions(["a red cube"])
    assert torch.allclose(alone[0], features[0, :, :3], atol=1e-6)
    with pytest.raises(ValueError, match="no words"):
        model.encode_captions(["..."])


def test_config_refuses_unknown_choices_and_has_profiles():
    with pytest.raises(ValueError, match="text"):
        WordConfig(caption="video")
    with pytest.raises(ValueError, match="sgd"):
        WordConfig(optimizer="rmsprop")
    assert WordConfig.for_profile("standard", seed=3).seed == 3
    assert WordConfig.for_profile("full", caption="speech").caption == "speech"


def test_batch_rows_cover_each_epoch_once_and_depend_only_on_the_step():
    rows = torch.cat([batch_rows(10, 5, seed=0, step=s) for s in range(2)])
    assert sorted(rows.tolist()) == list(range(10))
    assert torch.equal(batch_rows(10, 5, 0, 3), batch_rows(10, 5, 0, 3))


def _pairs(n=8, size=32):
    colours = torch.tensor([[200, 30, 30], [30, 30, 200]], dtype=torch.uint8)
    which = torch.arange(n) % 2
    images = colours[which][:, :, None, None].expand(n, 3, size, size).clone()
    captions = ["a red cube" if w == 0 else "a blue sphere" for w in which.tolist()]
    return images, captions, which


def test_training_is_deterministic_and_cached_by_data_key(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORLIB_DATA", str(tmp_path))
    images, captions, _ = _pairs()
    first, history = train_word_model(TINY, images, captions, device="cpu", data_key="pairs")
    assert history.series("loss")[0][-1] == TINY.steps - 1 and "impostor_caption" in history.values
    again, _ = train_word_model(TINY, images, captions, device="cpu", data_key="pairs")
    fresh, _ = train_word_model(TINY, images, captions, device="cpu")
    for a, b, c in zip(first.state_dict().values(), again.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert not list((tmp_path / "cache").glob(".*training.pt"))  # the resume checkpoint is removed when done
    _, edited_history = train_word_model(TINY, images, captions, edited=images.flip(0), device="cpu")
    assert "edited" in edited_history.values


def test_training_refuses_mismatched_inputs():
    images, captions, _ = _pairs()
    with pytest.raises(ValueError, match="captions"):
        train_word_model(TINY, images, captions[:-1], device="cpu")
    with pytest.raises(ValueError, match="edited"):
        train_word_model(TINY, images, captions, edited=images[:2], device="cpu")


def test_ranks_count_ties_against_the_positive_and_recall():
    scores = torch.tensor([[3.0, 1.0, 2.0], [1.0, 1.0, 0.0], [5.0, 4.0, 0.0]])
    assert ranks_of_positives(scores).tolist() == [0, 1, 2]
    assert recall_at(torch.tensor([0, 1, 2]), (1, 2)) == {"R@1": pytest.approx(1 / 3), "R@2": pytest.approx(2 / 3)}


class _Lookup(WordModel):
    """A fixed model: an image's one feature is its red level minus its blue level; 'red' reads +1, 'blue' -1."""

    def encode_images(self, images):
        x = images.float() / 255
        return (x[:, 0] - x[:, 2]).mean(dim=(1, 2)).view(-1, 1, 1, 1)

    def encode_captions(self, captions):
        values = [1.0 if "red" in c else -1.0 for c in captions]
        return torch.tensor(values).view(-1, 1, 1), torch.ones(len(values), 1, dtype=torch.bool)


def test_retrieval_edited_negatives_and_word_test_on_a_fixed_model():
    model = _Lookup(TINY)
    images, captions, which = _pairs(4)
    # S = +-0.66 per pair; both red images tie for each red caption, so ties count against: ranks 1 everywhere
    result = retrieval(model, images, captions)
    assert result["image_to_caption"] == {"R@1": 0.0, "R@5": 1.0, "R@10": 1.0}
    # negatives: the image of the other colour (scores below the positive) and an unchanged copy (a tie)
    negatives = torch.stack([images.flip(0), images], dim=1)
    recall = edited_negatives_recall(model, images, captions, negatives, ks=(1, 2))
    assert recall == {"R@1": 0.0, "R@2": 1.0}
    assert edited_negatives_recall(model, images, captions, negatives[:, :1], ks=(1,)) == {"R@1": 1.0}
    presence = torch.zeros(4, len(CONCEPTS), dtype=torch.bool)
    presence[:, CONCEPTS.index("color=red")] = which == 0
    presence[:, CONCEPTS.index("color=blue")] = which == 1
    scores = word_test(model, images, presence)
    assert scores["per_word"] == {"red": 1.0, "blue": 1.0}
    assert scores["per_attribute"] == {"color": 1.0} and scores["mean"] == 1.0
    with pytest.raises(ValueError, match="presence"):
        word_test(model, images, presence[:, :3])
    with pytest.raises(ValueError, match="negatives"):
        edited_negatives_recall(model, images, captions, images)


def test_words_read_in_context_average_their_token_features():
    plain = WordModel(TINY).eval()  # no context: a word's feature is the same everywhere
    captions = ["a red cube", "two red spheres"]
    alone, mask = word_features(plain, ["red", "cube"])
    in_context, _ = word_features(plain, ["red", "cube"], captions)
    assert alone.shape == (2, TINY.dim, 1) and mask.all() and torch.allclose(alone, in_context, atol=1e-6)
    model = WordModel(replace(TINY, text_context=True)).eval()
    features, _ = word_features(model, ["red", "green"], captions)
    with torch.no_grad():
        tokens, _ = model.encode_captions(captions)
        green, _ = model.encode_captions(["green"])
    # "red" is token 1 of both captions: the mean of its two features; "green" occurs in neither: read alone
    assert torch.allclose(features[0, :, 0], (tokens[0, :, 1] + tokens[1, :, 1]) / 2, atol=1e-6)
    assert torch.allclose(features[1, :, 0], green[0, :, 0], atol=1e-6)
    with pytest.raises(ValueError, match="speech model"):
        word_features(WordModel(replace(TINY, caption="speech")), ["red"], captions)


def test_plot_matchmap_draws_a_panel_per_word():
    model = WordModel(TINY).eval()
    figure = plot_matchmap(model, torch.zeros(3, 32, 32, dtype=torch.uint8), "a red cube")
    assert isinstance(figure, Figure) and len(figure.axes) == 4
    assert [axis.get_title().split("\n")[0] for axis in figure.axes[1:]] == ["a", "red", "cube"]
    grouped = plot_matchmap(model, torch.zeros(3, 32, 32, dtype=torch.uint8), "a red cube and a blue ball",
                            max_panels=3)
    assert len(grouped.axes) == 4


def test_plot_matchmap_of_speech_groups_segments_by_time():
    model = WordModel(replace(TINY, caption="speech")).eval()
    figure = plot_matchmap(model, torch.zeros(3, 32, 32, dtype=torch.uint8), torch.randn(40, 200), max_panels=5)
    titles = [axis.get_title().split("\n")[0] for axis in figure.axes[1:]]
    # 200 frames -> 25 positions of 0.08 s, grouped 5 by 5
    assert titles[0] == "0.00-0.40 s" and titles[-1] == "1.60-2.00 s" and len(titles) == 5
