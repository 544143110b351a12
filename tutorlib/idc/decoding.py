"""Caption decoding for IDC: feed [prefix, <mask>] under the UniLM mask and read the word at the <mask>;
greedy or beam search. Introduced in notebook 05_idc_difference_captioning.
"""
from __future__ import annotations

import torch

from tutorlib.world.text import Vocabulary

from .data import MASK
from .model import DifferenceTransformer


def _next_log_probs(model, pair: torch.Tensor, prefix: torch.Tensor, mask_id: int) -> torch.Tensor:
    """(B, V) log p(next word | pair, prefix): the word head at a <mask> placed after the prefix."""
    ids = torch.cat([prefix, torch.full((len(prefix), 1), mask_id, dtype=torch.long, device=prefix.device)], 1)
    hidden = model.cross_modal(pair, ids, "unilm", with_cls3=False)
    return torch.log_softmax(model.word_head(hidden[:, -1]).float(), -1)


@torch.no_grad()
def greedy_decode(model: DifferenceTransformer, before: torch.Tensor, after: torch.Tensor, vocab: Vocabulary,
                  max_len: int) -> list[str]:
    """The most likely word at each step until <eos> (or max_len words), for a batch of pairs.

    Introduced in notebook 05_idc_difference_captioning.
    """
    model.eval()
    eos, device = vocab.index["<eos>"], before.device
    pair = model.encode_pair(before, after)
    prefix = torch.zeros(len(before), 0, dtype=torch.long, device=device)
    for _ in range(max_len):
        word = _next_log_probs(model, pair, prefix, vocab.index[MASK]).argmax(-1)
        prefix = torch.cat([prefix, word[:, None]], 1)
        if (prefix == eos).any(1).all():
            break
    return [vocab.decode(row.tolist()) for row in prefix.cpu()]


@torch.no_grad()
def beam_decode(model: DifferenceTransformer, before: torch.Tensor, after: torch.Tensor, vocab: Vocabulary,
                max_len: int, beam: int = 3) -> list[str]:
    """Beam search: keep the `beam` prefixes with the highest sum of log-probabilities; a finished prefix (it
    produced <eos>) keeps its score. The answer is the beam with the highest mean log-probability per word.

    Introduced in notebook 05_idc_difference_captioning.
    """
    model.eval()
    eos, pad, device = vocab.index["<eos>"], vocab.pad, before.device
    n, v = len(before), len(vocab)
    pair = model.encode_pair(before, after).repeat_interleave(beam, 0)
    prefix = torch.zeros(n * beam, 0, dtype=torch.long, device=device)
    scores = torch.full((n, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start equal: keep one so the first step does not pick duplicates
    done = torch.zeros(n, beam, dtype=torch.bool, device=device)
    for _ in range(max_len):
        log_p = _next_log_probs(model, pair, prefix, vocab.index[MASK]).view(n, beam, v)
        # a finished beam can only append <pad>, at no cost
        log_p[done] = float("-inf")
        log_p[..., pad][done] = 0.0
        total = (scores[..., None] + log_p).view(n, beam * v)
        scores, flat = total.topk(beam, dim=1)
        source, word = flat // v, flat % v
        rows = (torch.arange(n, device=device)[:, None] * beam + source).view(-1)
        prefix = torch.cat([prefix[rows], word.view(-1, 1)], 1)
        done = done.view(-1)[rows].view(n, beam) | (word == eos)
        if done.all():
            break
    lengths = ((prefix != pad) & (prefix != eos)).sum(1).view(n, beam) + done.long()
    best = (scores / lengths.clamp(min=1)).argmax(1)
    chosen = prefix.view(n, beam, -1)[torch.arange(n, device=device), best]
    return [vocab.decode(row.tolist()) for row in chosen.cpu()]


@torch.no_grad()
def decode(model: DifferenceTransformer, before: torch.Tensor, after: torch.Tensor, vocab: Vocabulary,
           max_len: int, method: str = "greedy", beam: int = 3, batch: int = 256) -> list[str]:
    """Captions of pairs (features on any device; computed on the model's device), by "greedy" or "beam".

    Introduced in notebook 05_idc_difference_captioning.
    """
    if method not in ("greedy", "beam"):
        raise ValueError(f"method must be 'greedy' or 'beam', got {method!r}")
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(before), batch):
        b, a = before[i : i + batch].to(device), after[i : i + batch].to(device)
        out += (greedy_decode(model, b, a, vocab, max_len) if method == "greedy"
                else beam_decode(model, b, a, vocab, max_len, beam))
    return out
