"""The iterative editor of GeNeVA (the SSCR baseline): instruction and dialogue encoders, a conditional generator
that redraws the canvas, and a projection discriminator with an auxiliary object head; and their losses.

Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm
from torch.nn.utils.rnn import pack_padded_sequence

from tutorlib.world.attributes import ENTITIES

from .config import SscrConfig


# ---------------------------------------------------------------------------------------------------------
# Language: one instruction -> a vector; the turns of a dialogue -> the dialogue state h_t.
# ---------------------------------------------------------------------------------------------------------
class InstructionEncoder(nn.Module):
    """Word embeddings, a bidirectional GRU, the two final states joined and layer-normalised.

    Introduced in notebook 01_sscr_iterative_editing.
    """

    def __init__(self, vocab_size: int, word_dim: int, text_dim: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.gru = nn.GRU(word_dim, text_dim // 2, batch_first=True, bidirectional=True)
        self.norm = nn.LayerNorm(text_dim // 2 * 2)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embed(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed)  # (2, N, text_dim / 2): forward and backward final states
        return self.norm(torch.cat([last[0], last[1]], dim=-1))


# ---------------------------------------------------------------------------------------------------------
# Generator pieces.
# ---------------------------------------------------------------------------------------------------------
class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose scale and shift are predicted from the condition c: BN(x) (1 + gamma(c)) + beta(c)."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Linear(cond_dim, channels)
        self.beta = nn.Linear(cond_dim, channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * (1 + self.gamma(c)[..., None, None]) + self.beta(c)[..., None, None]


class UpBlock(nn.Module):
    """Residual upsampling block with conditional batch norm: x2 resolution."""

    def __init__(self, cin: int, cout: int, cond_dim: int):
        super().__init__()
        self.norm1, self.norm2 = ConditionalBatchNorm(cin, cond_dim), ConditionalBatchNorm(cout, cond_dim)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        y = self.conv1(F.interpolate(F.relu(self.norm1(x, c)), scale_factor=2, mode="nearest"))
        return self.skip(up) + self.conv2(F.relu(self.norm2(y, c)))


def _widths(channels: int, size: int) -> list[int]:
    """Channel widths at 4, 8, ..., size px: 4C at 4 px, halving with each doubling, at least C."""
    steps = int(math.log2(size // 4))
    return [max(channels, channels * 4 // 2**k) for k in range(steps + 1)]


def _check_size(size: int) -> None:
    if size < 16 or size & (size - 1):
        raise ValueError(f"image_size must be a power of two >= 16, got {size}")


class Editor(nn.Module):
    """GeNeVA's generator side: h_t = GRU_turns(LayerNorm(BiGRU(instruction_t)), h_{t-1}); the previous canvas
    encoded to features at size / 4; the generator starts from (conditioning augmentation of h_t, noise z),
    normalises every block with batch norm conditioned on h_t itself, joins the previous-canvas features at
    size / 4, and outputs an RGB drawing and a soft mask m that is pasted over the previous canvas:
    x_t = m * rgb + (1 - m) * x_{t-1} (a change from GeNeVA, which redraws the whole canvas, so that a small CPU
    budget need not learn to copy the canvas first).

    Introduced in notebook 01_sscr_iterative_editing.
    """

    def __init__(self, config: SscrConfig, vocab_size: int):
        super().__init__()
        _check_size(config.image_size)
        self.config = config
        c = config.channels
        self.text = InstructionEncoder(vocab_size, config.word_dim, config.text_dim)
        self.history = nn.GRU(config.text_dim // 2 * 2, config.history_dim, batch_first=True)
        # The previous canvas: size -> size / 4, 2C channels.
        self.canvas = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.BatchNorm2d(2 * c), nn.ReLU(),
        )
        # Conditioning augmentation: mu and log sigma^2 of c ~ N(mu, sigma^2) from h_t.
        self.augment = nn.Linear(config.history_dim, 2 * config.cond_dim)
        cond = config.cond_dim + config.noise_dim
        widths = _widths(c, config.image_size)
        self.start = nn.Linear(cond, widths[0] * 16)
        # The canvas features (size / 4) join the input of this block.
        self.join_before = int(math.log2(config.image_size // 16))
        self.blocks = nn.ModuleList(
            UpBlock(widths[k] + (2 * c if k == self.join_before else 0), widths[k + 1], config.history_dim)
            for k in range(len(widths) - 1)
        )
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], 4, 3, padding=1))
        with torch.no_grad():
            self.out[-1].bias[3] = -2.0  # start by mostly keeping the previous canvas

    def condition(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Dialogue states h (B, T, history_dim) from token ids (B, T, L) and lengths (B, T)."""
        b, t, length = ids.shape
        encoded = self.text(ids.reshape(b * t, length), lengths.reshape(b * t)).view(b, t, -1)
        return self.history(encoded)[0]

    def step(self, ids: torch.Tensor, lengths: torch.Tensor, h_previous: torch.Tensor) -> torch.Tensor:
        """One turn of the dialogue GRU: h_t from instructions (N, L) and h_{t-1} (N, history_dim)."""
        encoded = self.text(ids, lengths)
        return self.history(encoded[:, None], h_previous[None].contiguous())[0][:, 0]

    def forward(self, previous: torch.Tensor, h: torch.Tensor, noise: torch.Tensor | None = None):
        """Draw the next canvas from the previous one (N, 3, S, S) in [-1, 1] and h_t (N, history_dim).

        Returns (canvas, mu, logvar) of the conditioning augmentation.
        """
        mu, logvar = self.augment(h).chunk(2, dim=-1)
        # c = mu + sigma * eps, sigma = exp(logvar / 2)
        c = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        if noise is None:
            noise = torch.randn(len(h), self.config.noise_dim, device=h.device)
        cond = torch.cat([c, noise], dim=-1)
        x = self.start(cond).view(len(h), -1, 4, 4)
        features = self.canvas(previous)
        for k, block in enumerate(self.blocks):
            if k == self.join_before:
                x = torch.cat([x, features], dim=1)
            x = block(x, h)
        rgb, mask = self.out(x).split([3, 1], dim=1)
        # x_t = m * rgb + (1 - m) * x_{t-1}
        mask = torch.sigmoid(mask)
        return mask * torch.tanh(rgb) + (1 - mask) * previous, mu, logvar


# ---------------------------------------------------------------------------------------------------------
# The discriminator.
# ---------------------------------------------------------------------------------------------------------
class DownBlock(nn.Module):
    """Residual downsampling block with spectral norm: /2 resolution."""

    def __init__(self, cin: int, cout: int, first: bool = False):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1))
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        return F.avg_pool2d(y, 2) + F.avg_pool2d(self.skip(x), 2)


class Discriminator(nn.Module):
    """Projection discriminator over the change: f(x) - f(x_prev) at size / 4, down to 4 px, sum-pooled to phi;
    D = w . phi + <MLP(h_t), phi>; an auxiliary head sigmoid(A phi) over the 24 entities.

    Introduced in notebook 01_sscr_iterative_editing.
    """

    def __init__(self, config: SscrConfig):
        super().__init__()
        _check_size(config.image_size)
        c = config.channels
        self.image = nn.Sequential(DownBlock(3, c, first=True), DownBlock(c, 2 * c))  # -> size / 4
        deeper, width = [], 2 * c
        for _ in range(int(math.log2(config.image_size // 16))):
            deeper.append(DownBlock(width, min(2 * width, 8 * c)))
            width = min(2 * width, 8 * c)
        self.change = nn.Sequential(*deeper)
        self.linear = spectral_norm(nn.Linear(width, 1))
        self.project = nn.Sequential(nn.Linear(config.history_dim, width), nn.ReLU(), nn.Linear(width, width))
        self.aux = spectral_norm(nn.Linear(width, len(ENTITIES)))

    def pool(self, image_features: torch.Tensor, previous_features: torch.Tensor) -> torch.Tensor:
        """phi (N, width): the change f(x) - f(x_prev) taken down to 4 px, ReLU, summed over positions."""
        return F.relu(self.change(image_features - previous_features)).sum(dim=(2, 3))

    def judge(self, phi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """D = w . phi + <MLP(h), phi>, (N,)."""
        return self.linear(phi)[:, 0] + (self.project(h) * phi).sum(dim=1)

    def forward(self, image: torch.Tensor, previous: torch.Tensor, h: torch.Tensor):
        """(score (N,), aux logits (N, 24)) for images, their previous canvases and dialogue states."""
        phi = self.pool(self.image(image), self.image(previous))
        return self.judge(phi, h), self.aux(phi)


# ---------------------------------------------------------------------------------------------------------
# Losses.
# ---------------------------------------------------------------------------------------------------------
def hinge_d(real: torch.Tensor, wrong: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: max(0, 1 - D(real)) + 0.5 max(0, 1 + D(wrong)) + 0.5 max(0, 1 + D(fake)),
    averaged; `wrong` are real images under another dialogue's state. Introduced in notebook 01_sscr_iterative_editing.
    """
    return F.relu(1 - real).mean() + 0.5 * (F.relu(1 + wrong).mean() + F.relu(1 + fake).mean())


def hinge_g(fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -D(fake), averaged. Introduced in notebook 01_sscr_iterative_editing."""
    return -fake.mean()


def r1_penalty(score: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """R1 = 0.5 E ||grad_x D(x)||^2 on real images (image must require grad). Introduced in notebook 01_sscr_iterative_editing."""
    (grad,) = torch.autograd.grad(score.sum(), image, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


def aux_bce(logits: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the auxiliary head against a 0/1 bag of entities, averaged over entities.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    return F.binary_cross_entropy_with_logits(logits, objects)


def change_l1(fake: torch.Tensor, real: torch.Tensor, previous: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Reconstruction on the canvas and on the change: mean |fake - real| over all pixels plus the same mean over the
    pixels the turn changes (|real - previous| > threshold in any channel). Not in GeNeVA: see notebook
    01_sscr_iterative_editing for why a CPU budget needs it.
    """
    error = (fake - real).abs()
    region = ((real - previous).abs().amax(dim=1, keepdim=True) > threshold).expand_as(error)
    return error.mean() + error[region].mean() if region.any() else error.mean()


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) = 0.5 sum(mu^2 + sigma^2 - 1 - log sigma^2), averaged over samples.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1).mean()
