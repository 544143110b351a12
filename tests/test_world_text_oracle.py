import pytest

from tutorlib.world import Obj, Oracle, Scene, Vocabulary, count_phrase, object_phrase, relation_caption
from tutorlib.world import sample_scenes, scene_captions, tokenize, world_vocabulary

RED_CUBE = Obj("cube", "red", "small", "metal", x=-0.6, depth=1.3)
BLUE_BALL = Obj("sphere", "blue", "large", "rubber", x=0.4, depth=1.7)
RED_BALL = Obj("sphere", "red", "large", "rubber", x=0.9, depth=1.1)
SCENE = Scene((RED_CUBE, BLUE_BALL, RED_BALL))


def test_object_phrases():
    assert object_phrase(RED_CUBE) == "small red metal cube"
    assert object_phrase(RED_CUBE, fields=("color", "shape")) == "red cube"
    assert object_phrase(RED_CUBE, variant=1) == "tiny red metallic block"
    assert object_phrase({"color": "red"}, fields=("color",)) == "red object"
    assert count_phrase(2, "red cube") == "two red cubes" and count_phrase(1, "red cube") == "one red cube"
    with pytest.raises(ValueError, match="counts from 0"):
        count_phrase(11, "cube")
    assert relation_caption("red cube", "front", "blue sphere") == "a red cube in front of a blue sphere"
    with pytest.raises(ValueError, match="unknown relation"):
        relation_caption("red cube", "above", "blue sphere")


def test_scene_captions_are_true():
    captions = scene_captions(SCENE, seed=0)
    # Listed left to right; the seed picks the synonyms.
    assert captions[0] == "a tiny red shiny block, a big blue matte ball and a big red matte ball"
    assert scene_captions(SCENE, seed=1)[0] == "a small red metal cube, a large blue rubber sphere and a large red rubber sphere"
    assert captions[1] == "three objects: one cube and two spheres"
    assert len(scene_captions(Scene())) == 3
    # The relational caption holds in every sampled scene (checked with the oracle).
    for b, scene in enumerate(sample_scenes(range(200), (2, 5)).scenes()):
        words = scene_captions(scene, seed=b)[2]
        for rel, phrase in (("left", " to the left of a "), ("right", " to the right of a "),
                            ("front", " in front of a "), ("behind", " behind a ")):
            if phrase in words:
                subject, obj = words[2:].split(phrase)
                break
        parse = lambda p: dict(zip(("size", "color", "material", "shape"), p.split()))  # noqa: E731
        assert Oracle(scene).relate(parse(subject), rel, parse(obj)), words


def test_oracle_answers_hand_checked_questions():
    oracle = Oracle(SCENE)
    assert oracle.select(color="red") == [0, 2]
    assert oracle.count(shape="sphere") == 2 and oracle.count() == 3
    assert oracle.exists(color="blue", shape="sphere") and not oracle.exists(color="blue", shape="cube")
    assert oracle.query("material", shape="cube") == "metal"
    assert oracle.relate({"color": "red"}, "left", {"color": "blue"})  # the red cube
    assert oracle.relate({"shape": "sphere", "color": "red"}, "front", {"color": "blue"})
    assert not oracle.relate({"shape": "cube"}, "right", {})
    assert oracle.answer({"type": "count", "filter": {"size": "large"}}) == 2
    assert oracle.answer({"type": "relate", "subject": {"shape": "cube"}, "relation": "behind",
                          "object": {"color": "blue"}}) is False
    with pytest.raises(ValueError, match="exactly one"):
        oracle.query("color", shape="sphere")
    with pytest.raises(ValueError, match="unknown question type"):
        oracle.answer({"type": "why"})
    with pytest.raises(ValueError, match="not a color"):
        oracle.count(color="pink")


def test_vocabulary_round_trip_and_unknown_words():
    vocab = world_vocabulary(["add a cube at the center"])
    ids, unknown = vocab.encode("Add a red cube, at the center!", bos_eos=True)
    assert unknown == []
    assert vocab.decode(ids) == "add a red cube at the center"
    ids, unknown = vocab.encode("add a purple dragon")
    assert unknown == ["dragon"] and ids[-1] == vocab.unk
    assert tokenize("Big, SHINY ball.") == ["big", "shiny", "ball"]
    small = Vocabulary(["b", "a", "a"])
    assert small.words == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"] and len(small) == 6
