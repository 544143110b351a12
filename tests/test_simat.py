import pytest
import torch

from tutorlib.simat import AdaptationHeads, Embeddings, delta_queries, retrieve, simat_score, train_heads, word_text
from tutorlib.simat.heads import info_nce
from tutorlib.simat.retrieval import evaluate, target_triplet
from tutorlib.world.views import SimatDatabase


@pytest.fixture(scope="module")
def db():
    return SimatDatabase(144, size=32, seed=3, progress=False)


def oracle_embeddings(db) -> Embeddings:
    """Embeddings that encode the triplet exactly: one block of one-hot slots per field."""
    values = [sorted({t[k] for t in db.triplets}) for k in range(3)]
    offsets = [0, len(values[0]), len(values[0]) + len(values[1])]
    dim = offsets[2] + len(values[2])

    def slot(field_index, value):
        v = torch.zeros(dim)
        v[offsets[field_index] + values[field_index].index(value)] = 1.0
        return v

    images = torch.stack([sum(slot(k, t[k]) for k in range(3)) for t in db.triplets])
    words = {word_text(f, v): slot(k, v) for k, f in enumerate(("subj", "rel", "obj")) for v in values[k]}
    return Embeddings(images / images.norm(dim=1, keepdim=True), words)


def test_word_text():
    assert word_text("subj", "red cube") == "red cube"
    assert word_text("rel", "left") == "to the left of" and word_text("rel", "behind") == "behind"


def test_arithmetic_with_exact_embeddings_retrieves_every_target(db):
    emb = oracle_embeddings(db)
    # With the triplet encoded exactly, q = x + (w(target) - w(source)) points at the target image: score 100.
    assert evaluate(emb, db, "dev", "arithmetic", lam=1.0 / 3**0.5) == pytest.approx(100.0)
    # The source image alone never answers (it is excluded, and no other image has its triplet).
    assert evaluate(emb, db, "dev", "image") < 20.0


def test_delta_query_formula(db):
    emb = oracle_embeddings(db)
    t = db.split("test")[0]
    source = db.position(region_id=t.region_id)
    expected = emb.images[source] + 2.0 * (emb.words[word_text(t.field, t.target)] - emb.words[word_text(t.field, t.value)])
    assert torch.allclose(delta_queries(emb, db, [t], 2.0)[0], expected)
    assert torch.equal(delta_queries(emb, db, [t], 2.0, "image")[0], emb.images[source])
    assert torch.equal(delta_queries(emb, db, [t], 2.0, "text")[0], emb.words[word_text(t.field, t.target)])
    with pytest.raises(ValueError, match="unknown method"):
        delta_queries(emb, db, [t], 1.0, "magic")
    ids = retrieve(emb, db, [t], delta_queries(emb, db, [t], 1.0), k=3)
    assert ids.shape == (1, 3) and source not in ids[0].tolist()


def test_score_weights_by_inverse_square_root_of_norm2(db):
    queries = db.split("dev")[:2]
    right = [db.triplets.index(target_triplet(db, t)) for t in queries]
    wrong = [db.position(region_id=t.region_id) for t in queries]  # the source never shows the target
    w = [t.norm2 ** -0.5 for t in queries]
    score = simat_score(db, queries, torch.tensor([[right[0]], [wrong[1]]]))
    assert score == pytest.approx(100 * w[0] / (w[0] + w[1]))
    with pytest.raises(ValueError, match="2 queries but 1"):
        simat_score(db, queries, torch.tensor([[right[0]]]))


def test_heads_start_near_identity_and_learn():
    heads = AdaptationHeads(8, seed=0)
    assert torch.allclose(heads.image.weight, torch.eye(8), atol=0.05)
    generator = torch.Generator().manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(512, 8, generator=generator), dim=1)
    texts = torch.nn.functional.normalize(images @ torch.randn(8, 8, generator=generator), dim=1)  # a rotation away
    before = info_nce(heads.embed_images(images), heads.embed_texts(texts), 0.1).item()
    trained, history = train_heads(images, texts, tau=0.1, steps=150, batch=128, lr=1e-2)
    after = info_nce(trained.embed_images(images), trained.embed_texts(texts), 0.1).item()
    assert after < 0.5 * before
    assert history.last("loss") < history.series("loss")[1][0]
    with pytest.raises(ValueError, match="tau must be positive"):
        train_heads(images, texts, tau=0.0, steps=1)
    with pytest.raises(ValueError, match="512 image embeddings but 3"):
        train_heads(images, texts[:3], tau=0.1, steps=1)


def test_info_nce_hand_case():
    # Two orthogonal pairs, tau 1: logits = I, loss = -log(e / (e + 1)) in both directions.
    eye = torch.eye(2)
    assert info_nce(eye, eye, 1.0).item() == pytest.approx(-torch.log(torch.tensor(torch.e / (torch.e + 1))).item())


def test_embeddings_reject_unknown_words(db):
    emb = oracle_embeddings(db)
    with pytest.raises(ValueError, match="no embedding for 'purple dragon'"):
        emb.word("purple dragon")


def test_explorer_functions_draw_and_validate(db):
    import matplotlib

    matplotlib.use("Agg")
    from tutorlib.simat.explore import custom_query, explore_query, plot_delta_geometry, simat_explorer

    emb = oracle_embeddings(db)
    figure = explore_query(db, emb, position=0, field="subj", target="blue sphere", lam=1.0 / 3**0.5, k=3)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[0] == f"{db.triplets[0][0]} -> blue sphere" and titles[1] == "#1 yes"  # exact embeddings: found
    assert len(plot_delta_geometry(emb, db, "rel", "left", "right").axes) == 1
    query = custom_query(db, 5, "obj", "green cube")
    assert query.value == db.triplets[5][2] and query.region_id == db.region_ids[5]
    with pytest.raises(ValueError, match="not in the database"):
        custom_query(db, len(db), "subj", "red cube")
    with pytest.raises(ValueError, match="'purple cube' is not a subj"):
        custom_query(db, 0, "subj", "purple cube")
    with pytest.raises(ValueError, match="field must be one of"):
        custom_query(db, 0, "colour", "red")
    panel = simat_explorer(db, {"exact": emb})
    assert {c.description for c in panel.children[:-1]} == {"image", "field", "target", "lambda", "model"}


def test_best_lambda_is_chosen_on_dev():
    from tutorlib.simat.experiment import best_lambda

    scores = {"CLIP": {"dev": {"image": 1.0, "lambda=0.5": 3.0, "lambda=2.0": 9.0}, "test": {"lambda=0.5": 99.0}}}
    assert best_lambda(scores, "CLIP") == 2.0


def test_relation_pair_captions_are_true_and_styles_checked():
    from tutorlib.simat.experiment import head_training_pairs, relation_pair_caption
    from tutorlib.world import Oracle, sample_scenes
    from tutorlib.world.text import RELATION_PHRASES
    from tutorlib.world.views.simat import phrase_filter

    for b, scene in enumerate(sample_scenes(range(100), (2, 2)).scenes()):
        caption = relation_pair_caption(scene, b)
        rel, phrase = next((r, p) for r, p in RELATION_PHRASES.items() if f" {p} a " in caption)
        subject, obj = caption[2:].split(f" {phrase} a ")
        assert Oracle(scene).relate(phrase_filter(subject), rel, phrase_filter(obj)), caption
    with pytest.raises(ValueError, match="caption style"):
        head_training_pairs(None, None, "poems")


def test_summarise_means_spreads_and_dev_chosen_lambda():
    from tutorlib.simat.experiment import summarise

    def run(dev1, dev2, test1, test2):
        row = lambda a, b: {"image": 1.0, "text": 2.0, "lambda=1.0": a, "lambda=2.0": b}  # noqa: E731
        return {"scores": {"CLIP": {"dev": row(dev1, dev2), "test": row(test1, test2)}}}

    rows = summarise({0: run(10.0, 20.0, 11.0, 19.0), 1: run(30.0, 5.0, 29.0, 7.0)})
    chosen = rows[("CLIP", "arithmetic, λ chosen on dev")]
    assert chosen["lambda"] == [2.0, 1.0]
    assert chosen["test"] == pytest.approx((24.0, 5.0))  # mean of 19 and 29, std 5
    assert rows[("CLIP", "arithmetic λ=1")]["dev"] == pytest.approx((20.0, 10.0))
    assert rows[("CLIP", "image only")]["test"] == pytest.approx((1.0, 0.0))


class TextClip:
    """A stand-in encoder with an open vocabulary (like a BPE CLIP): texts hashed to fixed random unit vectors."""

    tokenizer = None

    def encode_texts(self, texts):
        rows = [torch.randn(8, generator=torch.Generator().manual_seed(sum(map(ord, t)))) for t in texts]
        return torch.nn.functional.normalize(torch.stack(rows), dim=1)

    def encode_images(self, images):
        return torch.nn.functional.normalize(images.float().flatten(1)[:, :8] + 1.0, dim=1)


@pytest.fixture
def free_form(tmp_path):
    """The release-format folder of tests/test_formats_simat.py ("sitting on a", "holding", no scenes), read."""
    from tests.test_formats_simat import write_free_form_release
    from tutorlib.formats import read_simat

    return read_simat(write_free_form_release(tmp_path / "free_form"))


def test_free_form_release_is_embedded_and_judged_by_a_caption_scorer(free_form):
    from tutorlib.simat import caption_judge, embed_database

    emb = embed_database(TextClip(), free_form)
    assert {"sitting on a", "holding", "young woman", "bench"} <= set(emb.words)
    assert torch.allclose(emb.word("sitting on a"), TextClip().encode_texts(["sitting on a"])[0])
    queries = free_form.transformations
    assert delta_queries(emb, free_form, queries, 1.0).shape == (3, 8)
    retrieved = torch.tensor([[2], [2], [0]])
    # Without scene graphs success cannot be judged from labels: a clear error, not a silent 0.
    with pytest.raises(ValueError, match="no scene graphs to judge success; pass judge=caption_judge"):
        simat_score(free_form, queries, retrieved)

    def scorer(image, caption):  # image 2 (value 80) matches the target caption with probability 0.9
        assert caption == "A man sitting on a bench."
        return 0.9 if int(image[0, 0, 0]) == 80 else 0.2

    # Successes 1, 1, 0 with weights 1, 2^-1/2, 2.5^-1/2: 100 (1 + 0.70711) / (1 + 0.70711 + 0.63246) = 72.966.
    score = simat_score(free_form, queries, retrieved, caption_judge(scorer))
    assert score == pytest.approx(72.966, abs=1e-3)
    assert simat_score(free_form, queries, retrieved, caption_judge(scorer, threshold=0.95)) == 0.0
    # The pictures judge the same way; a query built by hand has no target caption to score.
    import matplotlib

    matplotlib.use("Agg")
    from tutorlib.simat.explore import custom_query, show_retrievals

    with pytest.raises(ValueError, match="no scene graphs to judge success"):
        show_retrievals(free_form, emb, queries[:1], 1.0, k=1)
    assert show_retrievals(free_form, emb, queries[:1], 1.0, k=1, judge=caption_judge(scorer)) is not None
    with pytest.raises(ValueError, match="has no target caption"):
        caption_judge(scorer)(free_form, 0, custom_query(free_form, 0, "obj", "bench"))
