"""A small VQA model of the shapes world: yes/no and multiple-choice questions on whole images and on crops.

Image: a CNN to an 8 x 8 grid, each stage modulated by the question (FiLM); question: a GRU over its words;
answer: attention over the grid from the question, then a classifier over every answer word. Multiple-choice
questions take the best of their choices. Trained on questions the oracle answers exactly.
Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tutorlib.cache import train_or_load
from tutorlib.profiles import by_profile
from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.oracle import Oracle
from tutorlib.world.render import Rendering
from tutorlib.world.scene import Scene
from tutorlib.world.text import NUMBER_WORDS, RELATION_PHRASES, object_phrase, plural, world_vocabulary
from tutorlib.world.views.minimal_change import field_sets, look_filter

from .fit import fit
from .instructions import Box, unique_phrases
from .sources import rendered_scenes, to_unit

MAX_COUNT = 6
ANSWERS = ("yes", "no") + NUMBER_WORDS[: MAX_COUNT + 1] + tuple(v for vs in ATTRIBUTES.values() for v in vs)
QUESTION_WORDS = world_vocabulary(["is there a", "is this a", "how many are there", "what is this",
                                   "what color shape material size", "is the"])


@dataclass(frozen=True)
class Question:
    """A question about an image or a crop, its expected answer and, for multiple choice, the choices."""

    text: str
    answer: str
    choices: tuple[str, ...] = ("yes", "no")
    local: bool = False  # asked on the crop of a region, not the whole image
    attend: tuple[int, ...] | None = None  # training only: objects the answer looks at (None: not supervised)


@dataclass(frozen=True)
class VqaConfig:
    """The VQA model and its training."""

    image_size: int = 64  # pixels of images and crops
    width: int = 32  # CNN channels (x2 in the last stages)
    embed: int = 64  # word embedding size
    hidden: int = 128  # question GRU size
    steps: int = 1200  # optimizer steps (about 3.5 min on one CPU thread)
    batch: int = 64  # questions per step
    lr: float = 2e-3  # AdamW learning rate, cosine-decayed
    pool: int = 2048  # training scenes, rendered once
    local_share: float = 0.5  # share of training questions asked on object crops
    seed: int = 0
    answers: tuple[str, ...] = field(default=ANSWERS)

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "VqaConfig":
        return by_profile(profile, smoke=cls(steps=20, batch=8, pool=64, seed=seed), standard=cls(seed=seed),
                          full=cls(width=48, steps=4000, batch=128, pool=16384, seed=seed))


def crop_window(box: Box, image_size: int, margin: float = 0.5) -> tuple[int, int, int]:
    """(x0, y0, side) of the square around `box` (x, y, w, h) grown by `margin` of its side and 4 pixels each way,
    kept inside the image. Introduced in notebook 04_vismin_minimal_change."""
    x, y, w, h = box
    side = min(image_size, int(round(max(w, h) * (1 + 2 * margin) + 8)))
    x0 = int(round(max(0, min(image_size - side, x + w / 2 - side / 2))))
    y0 = int(round(max(0, min(image_size - side, y + h / 2 - side / 2))))
    return x0, y0, side


def crop(image: torch.Tensor, box: Box, size: int, margin: float = 0.5) -> torch.Tensor:
    """The crop_window of a uint8 (3, S, S) image, resized to size x size (uint8). Introduced in notebook 04."""
    x0, y0, side = crop_window(box, image.shape[-1], margin)
    patch = image[:, y0 : y0 + side, x0 : x0 + side].float()[None]
    return F.interpolate(patch, size=(size, size), mode="bilinear", antialias=True)[0].round().clamp(0, 255).byte()


def attribute_maps(rendering: Rendering) -> torch.Tensor:
    """(B, 5, S, S) int64 per-pixel classes of every image: for size, color, material and shape 0 on the floor and
    1 + the value's index on an object; then the object id (-1 on the floor). Introduced in notebook 04."""
    maps = []
    for name in ATTRIBUTES:
        classes = torch.as_tensor(np.where(rendering.batch.valid, rendering.batch.attributes[name] + 1, 0))
        padded = torch.cat([torch.zeros_like(classes[:, :1]), classes], dim=1)  # id -1 (floor) -> column 0
        maps.append(torch.gather(padded, 1, (rendering.ids.cpu().long() + 1).flatten(1)).view_as(rendering.ids))
    return torch.stack(maps + [rendering.ids.cpu().long()], dim=1)


def label_grid(maps: torch.Tensor, box: Box | None, grid: int, margin: float = 0.5) -> torch.Tensor:
    """(5, grid, grid) attribute classes and ids of an image (box None) or of its crop, by nearest sampling."""
    if box is not None:
        x0, y0, side = crop_window(box, maps.shape[-1], margin)
        maps = maps[:, y0 : y0 + side, x0 : x0 + side]
    return F.interpolate(maps[None].float(), size=(grid, grid), mode="nearest")[0].long()


def _phrase(look: dict[str, str]) -> str:
    return object_phrase(look)


def scene_questions(scene: Scene, boxes: dict[int, Box], rng: np.random.Generator, local: bool) -> list[tuple[Question, Box | None]]:
    """Questions with exact answers about a scene (local=False) or about one visible object's crop (local=True),
    each with the crop box (None for the whole image). Introduced in notebook 04_vismin_minimal_change."""
    oracle, visible, fields = Oracle(scene), list(boxes), field_sets({"shape"})
    looks = [dict(zip(ATTRIBUTES, values)) for values in
             zip(*(rng.choice(vs, 4) for vs in ATTRIBUTES.values()))]  # random looks for "no" answers
    if local:
        i = visible[int(rng.integers(len(visible)))]
        obj, box = scene.objects[i], boxes[i]
        own = look_filter(obj, fields[int(rng.integers(len(fields)))])
        other = {name: looks[0][name] for name in own}
        attribute = list(ATTRIBUTES)[int(rng.integers(len(ATTRIBUTES)))]
        same = obj.matches(**other)
        return [(Question(f"is this a {_phrase(own)}", "yes", local=True, attend=(i,)), box),
                (Question(f"is this a {_phrase(other)}", "yes" if same else "no", local=True, attend=(i,) if same else ()),
                 box),
                (Question(f"what {attribute} is this", getattr(obj, attribute), ATTRIBUTES[attribute], True, (i,)), box)]
    questions = []
    present = look_filter(scene.objects[visible[int(rng.integers(len(visible)))]], fields[int(rng.integers(len(fields)))])
    for look in (present, {name: looks[1][name] for name in fields[int(rng.integers(len(fields)))]}):
        named = tuple(i for i in oracle.select(**look) if i in boxes)
        questions.append(Question(f"is there a {_phrase(look)}", "yes" if oracle.exists(**look) else "no",
                                  attend=named))
    kind = look_filter(scene.objects[visible[int(rng.integers(len(visible)))]], fields[int(rng.integers(len(fields)))])
    count = min(oracle.count(**kind), MAX_COUNT)
    questions.append(Question(f"how many {plural(_phrase(kind))} are there", NUMBER_WORDS[count],
                              NUMBER_WORDS[: MAX_COUNT + 1], attend=tuple(i for i in oracle.select(**kind) if i in boxes)))
    named = [(i, unique_phrases(scene, i, {"shape"}, range(len(scene)))) for i in visible]
    named = [(i, u[0]) for i, u in named if u]
    if len(named) >= 2:
        (i, a), (j, b) = (named[k] for k in rng.choice(len(named), 2, replace=False))
        relation = list(RELATION_PHRASES)[int(rng.integers(len(RELATION_PHRASES)))]
        answer = "yes" if scene.related(i, relation, j) else "no"
        questions.append(Question(f"is the {_phrase(a)} {RELATION_PHRASES[relation]} the {_phrase(b)}", answer))
    return [(q, None) for q in questions]


def encode_questions(texts: Sequence[str]) -> torch.Tensor:
    """(B, L) padded word ids (unknown words map to <unk>). Introduced in notebook 04_vismin_minimal_change."""
    encoded = [QUESTION_WORDS.encode(t)[0] for t in texts]
    tokens = torch.full((len(texts), max(1, max(map(len, encoded)))), QUESTION_WORDS.pad, dtype=torch.long)
    for row, ids in enumerate(encoded):
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return tokens


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.SiLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.SiLU())


GRID = 16  # side of the feature grid the question attends over (a quarter of the image side)


class VqaModel(nn.Module):
    """(images in [-1, 1], question ids) -> (answer logits over `config.answers`, per-cell attribute logits,
    per-cell attention scores).

    The last two outputs feed auxiliary losses, which teach the model far faster than the answers alone: each
    cell of the 16 x 16 grid names the size, colour, material and shape under it (or the floor), and the
    attention score of a cell says whether it shows an object the question is about.
    Introduced in notebook 04_vismin_minimal_change.
    """

    def __init__(self, config: VqaConfig):
        super().__init__()
        c = config.width
        self.channels = (c, 2 * c, 2 * c)
        self.words = nn.Embedding(len(QUESTION_WORDS), config.embed, padding_idx=QUESTION_WORDS.pad)
        self.gru = nn.GRU(config.embed, config.hidden, batch_first=True)
        self.film = nn.Linear(config.hidden, 2 * sum(self.channels))
        self.stem = nn.Conv2d(5, c, 4, stride=2, padding=1)  # RGB + x, y coordinates
        self.stages = nn.ModuleList([_stage(c, c), _stage(c, 2 * c), _stage(2 * c, 2 * c)])
        self.part_sizes = [1 + len(v) for v in ATTRIBUTES.values()]
        self.parts = nn.Conv2d(2 * c, sum(self.part_sizes), 1)
        self.query = nn.Linear(config.hidden, 2 * c)
        self.head = nn.Sequential(nn.Linear(2 * c + sum(self.part_sizes) + 2 + config.hidden, 256), nn.SiLU(),
                                  nn.Linear(256, len(config.answers)))

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = (tokens != QUESTION_WORDS.pad).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.words(tokens), lengths, batch_first=True, enforce_sorted=False)
        q = self.gru(packed)[1][0]
        gamma_beta = self.film(q).split([k for c in self.channels for k in (c, c)], dim=1)
        side = images.shape[-1]
        ramp = torch.linspace(-1, 1, side, device=images.device)
        coords = torch.stack(torch.meshgrid(ramp, ramp, indexing="xy")).expand(len(images), 2, side, side)
        h = self.stem(torch.cat([images, coords], dim=1))
        parts = None
        for k, stage in enumerate(self.stages):
            h = stage(h if k != 1 else F.max_pool2d(h, 2))
            if k == 1:
                parts = self.parts(h)  # read before the question modulates the last stages
            h = h * (1 + gamma_beta[2 * k][..., None, None]) + gamma_beta[2 * k + 1][..., None, None]
        grid = h.flatten(2).transpose(1, 2)  # (B, 256, 2c)
        # a_i = grid_i . W q / sqrt(d), w_i = sigmoid(a_i) (supervised: does cell i show what the question is
        # about?); pooled = sum w_i x_i / sum w_i for x = the grid features and the cells' attribute
        # probabilities; peak = max a_i (is there?); mass = sum w_i / 16 (how many?)
        scores = grid @ self.query(q)[..., None] / grid.shape[-1] ** 0.5
        weights = torch.sigmoid(scores)
        probabilities = torch.cat([p.softmax(1) for p in parts.split(self.part_sizes, dim=1)], 1).flatten(2)
        features = torch.cat([grid, probabilities.transpose(1, 2)], dim=2)
        pooled = (weights * features).sum(1) / (weights.sum(1) + 1e-3)
        peak, mass = scores.amax(1), weights.sum(1) / 16
        return self.head(torch.cat([pooled, peak, mass, q], dim=1)), parts, scores[..., 0]


def parts_loss(parts: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over size, colour, material and shape of the cross-entropy of each grid cell's class (floor = 0)."""
    chunks = parts.split([1 + len(v) for v in ATTRIBUTES.values()], dim=1)
    return sum(F.cross_entropy(chunk, labels[:, k]) for k, chunk in enumerate(chunks))


def attention_loss(scores: torch.Tensor, ids: torch.Tensor, attend: Sequence[tuple[int, ...] | None]) -> torch.Tensor:
    """BCE of each cell's attention score against "the cell shows an object in `attend`", over the questions
    whose `attend` is given. Introduced in notebook 04_vismin_minimal_change."""
    rows = [k for k, objects in enumerate(attend) if objects is not None]
    if not rows:
        return scores.sum() * 0.0
    target = torch.stack([torch.isin(ids[k].flatten(), torch.tensor(attend[k], dtype=ids.dtype)) for k in rows])
    # objects cover few cells: positives weigh (negatives / positives), so "attend nowhere" is no easy way out
    positives = target.sum().clamp(min=1)
    weight = ((target.numel() - positives) / positives).clamp(1.0, 50.0)
    return F.binary_cross_entropy_with_logits(scores[rows], target.float().to(scores.device), pos_weight=weight)


class VqaData:
    """Training questions drawn per step from a pool of rendered scenes (a function of the step)."""

    def __init__(self, config: VqaConfig):
        from .instructions import visible_boxes

        self.config = config
        self.scenes, self.rendering = rendered_scenes(config.seed, "vqa-train", range(config.pool), config.image_size)
        self.boxes = [visible_boxes(self.rendering, b) for b in range(config.pool)]
        self.maps = attribute_maps(self.rendering)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list]:
        config = self.config
        rng = np.random.default_rng([config.seed, step, 7])
        images, texts, answers, labels, attend = [], [], [], [], []
        while len(texts) < config.batch:
            b = int(rng.integers(len(self.scenes)))
            if not self.boxes[b]:
                continue
            for question, box in scene_questions(self.scenes[b], self.boxes[b], rng, rng.random() < config.local_share):
                image = self.rendering.images[b]
                images.append(image if box is None else crop(image, box, config.image_size))
                texts.append(question.text)
                answers.append(config.answers.index(question.answer))
                labels.append(label_grid(self.maps[b], box, GRID))
                attend.append(question.attend)
        n = config.batch
        return (torch.stack(images[:n]), encode_questions(texts[:n]), torch.tensor(answers[:n]), torch.stack(labels[:n]),
                attend[:n])


def train_vqa(model: VqaModel, config: VqaConfig, device: torch.device):
    """loss = cross-entropy over the answer words + parts_loss + attention_loss.

    Introduced in notebook 04_vismin_minimal_change.
    """
    def loss_and_logs(batch):
        images, tokens, answers, labels, attend = batch
        logits, parts, scores = model(to_unit(images).to(device), tokens.to(device))
        loss = F.cross_entropy(logits, answers.to(device)) + parts_loss(parts, labels[:, :4].to(device)) \
            + attention_loss(scores, labels[:, 4], attend)
        return loss, {"accuracy": (logits.argmax(1) == answers.to(device)).float().mean().item()}

    return fit(model, loss_and_logs, VqaData(config).batch, config.steps, config.lr, device, "VQA")


def load_vqa(config: VqaConfig, device: torch.device) -> tuple[VqaModel, dict]:
    """The VQA model of `config`, from the cache or trained. Introduced in notebook 04_vismin_minimal_change."""
    model, info = train_or_load("vismin-vqa", asdict(config), lambda: VqaModel(config),
                               lambda m: {"history": train_vqa(m, config, device).to_dict()}, device)
    return model.to(device).eval(), info


@torch.no_grad()
def answer(model: VqaModel, images: torch.Tensor, questions: Sequence[Question], answers: Sequence[str] = ANSWERS
           ) -> list[str]:
    """The model's answer to each question about its image (uint8), chosen among the question's choices.

    Introduced in notebook 04_vismin_minimal_change.
    """
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images for {len(questions)} questions")
    device = next(model.parameters()).device
    logits = model(to_unit(images).to(device), encode_questions([q.text for q in questions]).to(device))[0].cpu()
    out = []
    for row, question in zip(logits, questions):
        allowed = torch.tensor([answers.index(c) for c in question.choices])
        out.append(answers[int(allowed[row[allowed].argmax()])])
    return out


def evaluate_vqa(model: VqaModel, config: VqaConfig, n: int = 200) -> dict[str, float]:
    """Accuracy on held-out scenes, for whole-image and crop questions. Introduced in notebook 04."""
    from .instructions import visible_boxes

    scenes, rendering = rendered_scenes(config.seed, "vqa-test", range(n), config.image_size)
    rng = np.random.default_rng([config.seed, 1])
    results = {}
    for local in (False, True):
        images, questions = [], []
        for b, scene in enumerate(scenes):
            boxes = visible_boxes(rendering, b)
            if boxes:
                for question, box in scene_questions(scene, boxes, rng, local):
                    images.append(rendering.images[b] if box is None else crop(rendering.images[b], box, config.image_size))
                    questions.append(question)
        predicted = answer(model, torch.stack(images), questions, config.answers)
        results["local" if local else "global"] = float(np.mean([p == q.answer for p, q in zip(predicted, questions)]))
    return results
