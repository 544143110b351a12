import dataclasses

import pytest
import torch

from tutorlib.clip import ClipConfig, load
from tutorlib.vismin import FinetuneConfig, finetune_clip, minimal_change_batch, pair_similarities, score_pairs
from tutorlib.vismin import summarise_scores
from tutorlib.world.views import MinimalChangePairs


def test_scores_hand_cases():
    # s[n, c, i] = similarity of caption c and image i.
    perfect = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    text_only = torch.tensor([[0.9, 0.95], [0.2, 0.99]])  # each image prefers its caption; captions prefer image 1
    tie = torch.tensor([[0.5, 0.5], [0.5, 0.5]])  # strict comparisons: a tie is a failure
    out = score_pairs(torch.stack([perfect, text_only, tie]))
    assert out["text"].tolist() == [True, True, False]
    assert out["image"].tolist() == [True, False, False]
    assert out["group"].tolist() == [True, False, False]
    with pytest.raises(ValueError, match=r"\(N, 2, 2\)"):
        score_pairs(torch.zeros(3, 4))


def test_summary_percentages_per_category_and_average():
    outcomes = {"text": torch.tensor([True, False, True, True]), "image": torch.tensor([True, True, False, True]),
                "group": torch.tensor([True, False, False, True])}
    table = summarise_scores(outcomes, ["object", "object", "counting", "counting"])
    assert list(table) == ["object", "counting", "average"]
    assert table["object"] == {"text": 50.0, "image": 100.0, "group": 50.0}
    assert table["counting"] == {"text": 100.0, "image": 50.0, "group": 50.0}
    assert table["average"] == {"text": 75.0, "image": 75.0, "group": 50.0}
    with pytest.raises(ValueError, match="3 categories for 4 items"):
        summarise_scores(outcomes, ["object"] * 3)


def test_batch_layout_pairs_rows_k_and_b_plus_k():
    pairs = MinimalChangePairs(4, size=32, seed=2)
    items = [pairs[i] for i in range(4)]
    images, captions = minimal_change_batch(items)
    assert images.shape == (8, 3, 32, 32)
    assert captions[1] == items[1]["caption0"] and captions[5] == items[1]["caption1"]
    assert torch.equal(images[6], items[2]["image1"])


def test_finetuning_runs_and_similarities_have_pair_layout(isolated_dirs):
    config = dataclasses.replace(ClipConfig.for_profile("smoke"), steps=4, batch_size=16)
    clip = load("world", config=config, device="cpu")
    pairs = MinimalChangePairs(16, size=32, seed=3)
    items = [pairs[i] for i in range(len(pairs))]
    sims = pair_similarities(clip, items)
    assert sims.shape == (16, 2, 2) and sims.abs().max() <= 1.0 + 1e-5
    before = [p.detach().clone() for p in clip.model.parameters()]
    history = finetune_clip(clip, items, FinetuneConfig(steps=3, pairs_per_batch=8), torch.device("cpu"))
    assert len(history.series("loss")[0]) >= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, clip.model.parameters()))
    with pytest.raises(ValueError, match="fewer than one batch"):
        finetune_clip(clip, items[:4], FinetuneConfig(pairs_per_batch=8), torch.device("cpu"))


def test_ce_clip_loss_hand_case():
    from tutorlib.vismin.finetune import ce_clip_loss

    # One image whose caption matches exactly and whose negative caption is orthogonal; scale 1, theta 0.
    v = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[1.0, 0.0]])
    n = torch.tensor([[0.0, 1.0]])
    loss, theta = ce_clip_loss(v, t, n, torch.tensor(1.0), torch.tensor(0.0), rank_weight=0.2, intra_weight=0.3)
    e = torch.e
    contrastive = 0.5 * (-torch.log(torch.tensor(e / (e + 1))) + 0.0)  # image->[t, n]; text->[v] is certain
    rank = 0.0  # relu(0 + 0 - 1)
    intra = -torch.log(torch.tensor(e / (e + 1)))  # [S(v,t)=1 | S(t,n)=0]
    assert loss.item() == pytest.approx((contrastive + 0.2 * rank + 0.3 * intra).item(), rel=1e-5)
    assert theta.item() == pytest.approx(1.0)
    # A negative closer than the positive is penalised by the rank term.
    worse, _ = ce_clip_loss(v, t, torch.tensor([[1.0, 0.0]]), torch.tensor(1.0), torch.tensor(0.5))
    assert worse > loss


def test_ce_clip_finetuning_runs_and_bad_loss_is_rejected(isolated_dirs):
    config = dataclasses.replace(ClipConfig.for_profile("smoke"), steps=4, batch_size=16)
    clip = load("world", config=config, device="cpu")
    pairs = MinimalChangePairs(16, size=32, seed=3)
    items = [pairs[i] for i in range(len(pairs))]
    history = finetune_clip(clip, items, FinetuneConfig(steps=3, pairs_per_batch=8, loss="ce-clip"), torch.device("cpu"))
    assert all(torch.isfinite(torch.tensor(history.series("loss")[1])))
    with pytest.raises(ValueError, match="loss must be one of"):
        finetune_clip(clip, items, FinetuneConfig(loss="triplet"), torch.device("cpu"))
