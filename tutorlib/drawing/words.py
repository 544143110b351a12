"""The word-learning model of "Learning words by drawing images": an image encoder and a caption encoder
whose per-location and per-position features are compared by a matchmap, trained with the sampled
margin-rank loss (plus, optionally, GAN-edited images as hard negatives).

    matchmap    M(h, w, t) = I(h, w) . A(t)
    similarity  S(I, A) = mean over valid t of max over (h, w) of M(h, w, t)

Captions are text (tokens of tutorlib.world.text, the default) or speech (log-mel spectrograms of
tutorlib.drawing.speech).
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tutorlib.profiles import by_profile
from tutorlib.world.text import world_vocabulary

from .speech import N_MELS

CAPTION_KINDS = ("text", "speech")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class WordConfig:
    """The word-learning model and its training."""

    caption: str = "text"  # caption encoder: "text" (world tokens) or "speech" (log-mel of espeak-ng audio)
    dim: int = 64  # D: features per image location and per caption position
    grid: int = 8  # the image feature map is grid x grid locations (the paper: 8 x 8)
    image_width: int = 16  # channels of the first image conv stage, doubled at each of the next two
    word_dim: int = 64  # word-embedding size of the text encoder
    # whether the text encoder mixes neighbouring words (two 1D convs); without, a word has the same feature in
    # every caption, so the word test's one-word caption reads exactly the word's column of a caption's matchmap
    text_context: bool = False
    speech_width: int = 64  # channels of the speech conv stack (3 stages, each halving the frame rate)
    steps: int = 400  # optimizer steps (400 x 64 pairs: about 13 passes over 2000 pairs)
    batch_size: int = 64  # pairs per step; impostors are drawn from the same batch
    # "adam", or "sgd", the paper's (lr 1e-3, momentum 0.9): measured on 2000 pairs at 48 px, 300 steps, SGD reached
    # text retrieval R@10 0.55 where Adam reached 0.91, so Adam is the default within the CPU budget
    optimizer: str = "adam"
    lr: float = 1e-3  # learning rate
    momentum: float = 0.9  # SGD momentum (optimizer="sgd")
    margin: float = 1.0  # the margin of every hinge term
    seed: int = 0  # initialisation, batch order and impostor draws
    recipe: int = 1  # version of the training code; bumping it retrains instead of loading a stale cache entry

    def __post_init__(self):
        if self.caption not in CAPTION_KINDS:
            raise ValueError(f"unknown caption kind {self.caption!r}; choose one of {list(CAPTION_KINDS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {list(OPTIMIZERS)}")

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0, caption: str = "text") -> "WordConfig":
        """Smoke: a few steps; standard: the claim on a CPU; full: wider and longer on a GPU.

        Introduced in notebook 03_drawing_gan_units.
        """
        return by_profile(
            profile,
            smoke=cls(caption=caption, dim=32, image_width=8, word_dim=32, speech_width=32, steps=20,
                      batch_size=32, seed=seed),
            standard=cls(caption=caption, seed=seed),
            full=cls(caption=caption, dim=256, image_width=64, word_dim=128, speech_width=256, steps=3000,
                     batch_size=128, seed=seed),
        )


def _conv_stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def as_float_images(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 in [0, 255] or float in [0, 1] -> float in [-1, 1] (x / 255 * 2 - 1 for uint8)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return images * 2 - 1


class ImageEncoder(nn.Module):
    """VGG-style: three conv stages (3x3 conv, batch norm, ReLU; 2x2 max-pool after the first two), a 1x1
    projection to D and an adaptive average pool to grid x grid: (B, 3, H, W) -> (B, D, grid, grid), any H, W >= 16.

    Introduced in notebook 03_drawing_gan_units.
    """

    def __init__(self, config: WordConfig):
        super().__init__()
        w = config.image_width
        self.features = nn.Sequential(
            _conv_stage(3, w), nn.MaxPool2d(2), _conv_stage(w, 2 * w), nn.MaxPool2d(2), _conv_stage(2 * w, 4 * w),
            nn.Conv2d(4 * w, config.dim, 1), nn.AdaptiveAvgPool2d(config.grid))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if min(images.shape[-2:]) < 16:
            raise ValueError(f"images must be at least 16 px on a side, got {tuple(images.shape[-2:])}")
        return self.features(as_float_images(images))


class TextEncoder(nn.Module):
    """Word embeddings of the world vocabulary, projected to D: A(t) = P e(t); with config.text_context, plus two
    1D convolutions over neighbouring words (kernel 3): A(t) = P e(t) + conv2(relu(conv1(e)))(t).
    Token ids (B, T) -> (B, D, T).

    Introduced in notebook 03_drawing_gan_units.
    """

    def __init__(self, config: WordConfig):
        super().__init__()
        self.vocabulary = world_vocabulary()
        self.embed = nn.Embedding(len(self.vocabulary), config.word_dim, padding_idx=self.vocabulary.pad)
        self.word = nn.Conv1d(config.word_dim, config.dim, 1)
        self.context = None
        if config.text_context:
            self.hidden = nn.Conv1d(config.word_dim, config.word_dim, 3, padding=1)
            self.context = nn.Conv1d(config.word_dim, config.dim, 3, padding=1)

    def inputs(self, captions: Sequence[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded token ids (B, T) and lengths (B,) of text captions (unknown words become <unk>)."""
        encoded = [self.vocabulary.encode(c)[0] for c in captions]
        for caption, ids in zip(captions, encoded):
            if not ids:
                raise ValueError(f"caption {caption!r} has no words")
        lengths = torch.tensor([len(ids) for ids in encoded])
        tokens = torch.full((len(encoded), int(lengths.max())), self.vocabulary.pad, dtype=torch.long)
        for row, ids in enumerate(encoded):
            tokens[row, : len(ids)] = torch.tensor(ids)
        return tokens.to(device), lengths.to(device)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.arange(tokens.shape[1], device=tokens.device)[None] < lengths[:, None]
        keep = mask[:, None].to(self.embed.weight.dtype)  # padding stays zero, so it never leaks into a caption
        embedded = self.embed(tokens).transpose(1, 2) * keep
        if self.context is None:
            return self.word(embedded), mask
        return self.word(embedded) + self.context(torch.relu(self.hidden(embedded)) * keep), mask


class SpeechEncoder(nn.Module):
    """Log-mel spectrograms (B, N_MELS, frames) -> (B, D, frames / 8): input normalisation, then three 1D conv
    stages (kernel 5, batch norm, ReLU, max-pool 2), the last projecting to D.

    Introduced in notebook 03_drawing_gan_units.
    """

    POOLING = 8  # frames per output position (three max-pools of 2)

    def __init__(self, config: WordConfig):
        super().__init__()
        w = config.speech_width
        self.normalise = nn.BatchNorm1d(N_MELS, affine=False)
        # the last stage has no batch norm or ReLU: its features may be negative, as the image's may
        self.stages = nn.Sequential(
            nn.Conv1d(N_MELS, w, 5, padding=2), nn.BatchNorm1d(w), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(w, w, 5, padding=2), nn.BatchNorm1d(w), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(w, config.dim, 5, padding=2), nn.MaxPool1d(2))

    def inputs(self, spectrograms: Sequence[torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero-padded spectrograms (B, N_MELS, frames, a multiple of 8) and their lengths in frames (B,)."""
        for index, spectrogram in enumerate(spectrograms):
            if not isinstance(spectrogram, torch.Tensor) or spectrogram.ndim != 2 or spectrogram.shape[0] != N_MELS:
                raise ValueError(f"speech caption {index} must be a ({N_MELS}, frames) log-mel tensor "
                                 "(see tutorlib.drawing.speech.spoken_captions)")
        lengths = torch.tensor([s.shape[1] for s in spectrograms])
        frames = -(-max(int(lengths.max()), self.POOLING) // self.POOLING) * self.POOLING
        batch = torch.zeros(len(spectrograms), N_MELS, frames)
        for row, spectrogram in enumerate(spectrograms):
            batch[row, :, : spectrogram.shape[1]] = spectrogram
        return batch.to(device), lengths.to(device)

    def forward(self, spectrograms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.stages(self.normalise(spectrograms))
        # a position is valid when its whole 8-frame window lies inside the caption (at least one position)
        valid = torch.clamp(lengths // self.POOLING, min=1)
        return features, torch.arange(features.shape[2], device=features.device)[None] < valid[:, None]


class WordModel(nn.Module):
    """The image encoder and the caption encoder of one WordConfig.

    Introduced in notebook 03_drawing_gan_units.
    """

    def __init__(self, config: WordConfig):
        super().__init__()
        self.config = config
        self.image = ImageEncoder(config)
        self.caption = TextEncoder(config) if config.caption == "text" else SpeechEncoder(config)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 or float in [0, 1] -> per-location features (B, D, grid, grid)."""
        return self.image(images.to(next(self.parameters()).device))

    def encode_captions(self, captions: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions (strings, or (N_MELS, frames) spectrograms for speech) -> features (B, D, T) and a mask (B, T),
        True at real positions."""
        return self.caption(*self.caption.inputs(list(captions), next(self.parameters()).device))


def matchmap(image: torch.Tensor, caption: torch.Tensor) -> torch.Tensor:
    """M(h, w, t) = I(h, w) . A(t): image features (D, h, w) and caption features (D, T) -> (h, w, T).

    Introduced in notebook 03_drawing_gan_units.
    """
    return torch.einsum("dhw,dt->hwt", image, caption)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # mean over the last axis of the positions where mask is True
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def similarity(images: torch.Tensor, captions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """S of each pair: images (B, D, h, w), captions (B, D, T), mask (B, T) -> (B,);
    S = mean over valid t of max over (h, w) of M(h, w, t).

    Introduced in notebook 03_drawing_gan_units.
    """
    per_position = torch.einsum("bdp,bdt->bpt", images.flatten(2), captions).amax(dim=1)
    return _masked_mean(per_position, mask)


def similarity_matrix(images: torch.Tensor, captions: torch.Tensor, mask: torch.Tensor,
                      chunk: int = 16) -> torch.Tensor:
    """S of every image with every caption: (N, D, h, w), (K, D, T), (K, T) -> (N, K), `chunk` images at a time.

    Introduced in notebook 03_drawing_gan_units.
    """
    rows = []
    for start in range(0, len(images), chunk):
        part = images[start: start + chunk].flatten(2)
        per_position = torch.einsum("ndp,kdt->nkpt", part, captions).amax(dim=2)
        rows.append(_masked_mean(per_position, mask[None]))
    return torch.cat(rows) if rows else images.new_zeros(0, len(captions))


def sample_impostors(n: int, generator: torch.Generator) -> torch.Tensor:
    """For each of n pairs a random other index of the batch: j = (i + U{1..n-1}) mod n, so j != i.

    Introduced in notebook 03_drawing_gan_units.
    """
    if n < 2:
        raise ValueError(f"impostors need a batch of at least 2 pairs, got {n}")
    return (torch.arange(n) + torch.randint(1, n, (n,), generator=generator)) % n


def margin_rank_loss(images: torch.Tensor, captions: torch.Tensor, mask: torch.Tensor,
                     impostor_images: torch.Tensor, impostor_captions: torch.Tensor,
                     edited: torch.Tensor | None = None, margin: float = 1.0) -> dict[str, torch.Tensor]:
    """The sampled margin-rank loss, averaged over the batch, and its terms.

    Features of B matching pairs (images (B, D, h, w), captions (B, D, T), mask (B, T)); the impostor image and
    caption of pair i are rows impostor_images[i] and impostor_captions[i]; `edited` (B, D, h, w) are the features
    of each image with the caption's concept removed (hard negatives), or None for the plain loss.
    Returns {"loss", "impostor_image", "impostor_caption", "edited"} (the last only with `edited`).

    Introduced in notebook 03_drawing_gan_units.
    """
    positive = similarity(images, captions, mask)
    terms = {
        # [m + S(I_imp, A) - S(I, A)]+
        "impostor_image": F.relu(margin + similarity(images[impostor_images], captions, mask) - positive),
        # [m + S(I, A_imp) - S(I, A)]+
        "impostor_caption": F.relu(margin + similarity(images, captions[impostor_captions],
                                                       mask[impostor_captions]) - positive),
    }
    if edited is not None:
        # [m + S(I_edited, A) - S(I, A)]+
        terms["edited"] = F.relu(margin + similarity(edited, captions, mask) - positive)
    terms = {name: value.mean() for name, value in terms.items()}
    return {"loss": sum(terms.values()), **terms}
