"""The iterative explainer: reads the change between two canvases and says the instruction that made it.

Cross-task consistency: an editor whose drawing lets a frozen explainer recover the instruction has drawn what
the instruction asked for. Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import SscrConfig

GRID = 4  # the change is read on a GRID x GRID map of features


class Explainer(nn.Module):
    """g = f(x_t) - f(x_{t-1}) on a 4 x 4 grid (16 cells of `width` features); the history h_{t-1} is a GRU
    over the mean word embeddings of the earlier instructions (the explainer's own, so freezing it freezes
    everything it reads); a GRU decoder with dot-product attention over the grid predicts the tokens:
        s_0 = tanh(W [h_{t-1}; mean g]),  a_k = softmax(g q(s_{k-1}) / sqrt(d)),  ctx_k = sum_i a_ki g_i,
        s_k = GRU([emb(w_{k-1}); ctx_k], s_{k-1}),  p(w_k) = softmax(V [s_k; ctx_k]).

    Introduced in notebook 01_sscr_iterative_editing.
    """

    def __init__(self, config: SscrConfig, vocab_size: int):
        super().__init__()
        c, hidden = config.channels, config.text_dim
        self.width = 4 * c
        self.features = nn.Sequential(
            nn.Conv2d(3, c, 3, 1, 1), nn.ReLU(), nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(GRID),
        )
        self.embed = nn.Embedding(vocab_size, config.word_dim, padding_idx=0)
        self.history = nn.GRU(config.word_dim, hidden, batch_first=True)
        self.init = nn.Linear(hidden + self.width, hidden)
        self.query = nn.Linear(hidden, self.width)
        self.cell = nn.GRUCell(config.word_dim + self.width, hidden)
        self.out = nn.Linear(hidden + self.width, vocab_size)

    def history_states(self, ids: torch.Tensor) -> torch.Tensor:
        """h_{t-1} (B, T, hidden) for dialogues of token ids (B, T, L): zeros at the first turn."""
        mask = (ids != 0).float()[..., None]
        mean = (self.embed(ids) * mask).sum(2) / mask.sum(2).clamp(min=1)
        states = self.history(mean)[0]
        return torch.cat([torch.zeros_like(states[:, :1]), states[:, :-1]], dim=1)

    def grid(self, previous: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The change g = f(x_t) - f(x_{t-1}) as (N, 16, width)."""
        return (self.features(image) - self.features(previous)).flatten(2).transpose(1, 2)

    def _attend(self, grid: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax((grid @ self.query(state)[..., None])[..., 0] / self.width**0.5, dim=1)
        return (weights[..., None] * grid).sum(1)

    def forward(self, previous: torch.Tensor, image: torch.Tensor, history: torch.Tensor, ids: torch.Tensor):
        """Logits (N, L - 1, vocab) of the tokens ids[:, 1:] given ids[:, :-1] (teacher forcing)."""
        grid = self.grid(previous, image)
        state = torch.tanh(self.init(torch.cat([history, grid.mean(1)], dim=1)))
        logits = []
        for k in range(ids.shape[1] - 1):
            context = self._attend(grid, state)
            state = self.cell(torch.cat([self.embed(ids[:, k]), context], dim=1), state)
            logits.append(self.out(torch.cat([state, context], dim=1)))
        return torch.stack(logits, dim=1)

    def loss(self, previous, image, history, ids) -> torch.Tensor:
        """Token cross-entropy of the instruction, <pad> ignored: -mean_k log p(w_k | w_<k, change, history)."""
        logits = self(previous, image, history, ids)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), ignore_index=0)

    @torch.no_grad()
    def explain(self, previous, image, history, bos: int, max_len: int = 14) -> torch.Tensor:
        """Greedy decoding: token ids (N, max_len) that start after <bos>."""
        grid = self.grid(previous, image)
        state = torch.tanh(self.init(torch.cat([history, grid.mean(1)], dim=1)))
        word = torch.full((len(grid),), bos, dtype=torch.long, device=grid.device)
        out = []
        for _ in range(max_len):
            context = self._attend(grid, state)
            state = self.cell(torch.cat([self.embed(word), context], dim=1), state)
            word = self.out(torch.cat([state, context], dim=1)).argmax(1)
            out.append(word)
        return torch.stack(out, dim=1)
