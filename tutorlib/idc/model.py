"""The IDC transformer: a shared single-image encoder, a pair encoder and a cross-modal transformer over
[CLS1, image 1, CLS2, image 2, (CLS3,) text], with type and position embeddings. Introduced in notebook
05_idc_difference_captioning.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import IdcConfig

IMAGE1, IMAGE2, TEXT = 0, 1, 2  # token types
ATTENTION = ("full", "unilm", "image_only")


def attention_mask(n_image: int, n_text: int, kind: str) -> torch.Tensor:
    """(L, L) bool mask, True where a query row may NOT attend to a key column (L = n_image + n_text).

    "full": everything sees everything (pretraining MLM and MVCL); "unilm": image tokens see image tokens only,
    text token i sees every image token and text tokens 0..i (fine-tuning and decoding); "image_only": image
    tokens see image tokens only, text sees everything (FDA: the pair representation ignores the caption).
    Introduced in notebook 05_idc_difference_captioning.
    """
    if kind not in ATTENTION:
        raise ValueError(f"attention must be one of {list(ATTENTION)}, got {kind!r}")
    n = n_image + n_text
    blocked = torch.zeros(n, n, dtype=torch.bool)
    if kind != "full":
        blocked[:n_image, n_image:] = True
    if kind == "unilm":
        blocked[n_image:, n_image:] = torch.triu(torch.ones(n_text, n_text, dtype=torch.bool), diagonal=1)
    return blocked


def _blocks(config: IdcConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(config.d_model, config.heads, 4 * config.d_model, config.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class DifferenceTransformer(nn.Module):
    """IDC's model on (B, R, C) grid features of two images and (B, T) caption token ids.

    Heads: `word_head` (masked words), `region_head` (masked region features, MVCL), `classifier` (changed or
    not, from the CLS1 and CLS2 outputs). Introduced in notebook 05_idc_difference_captioning.
    """

    def __init__(self, config: IdcConfig, feature_dim: int, n_regions: int, vocab_size: int, pad_id: int = 0):
        super().__init__()
        d = config.d_model
        self.n_regions, self.pad_id = n_regions, pad_id
        self.project = nn.Sequential(nn.Linear(feature_dim, d), nn.LayerNorm(d))
        self.project_difference = nn.Linear(feature_dim, d)  # no normalisation: the size of a change matters
        self.change = nn.Sequential(nn.Linear(2 * feature_dim, d), nn.LayerNorm(d))
        self.sharpness = nn.Parameter(torch.tensor(1.0))
        self.cls = nn.Parameter(0.02 * torch.randn(3, d))  # CLS1, CLS2, CLS3
        self.region_position = nn.Embedding(n_regions + 1, d)  # 0: the image's CLS
        self.text_position = nn.Embedding(config.max_text + 1, d)  # 0: CLS3
        self.token_type = nn.Embedding(3, d)
        self.word = nn.Embedding(vocab_size, d)
        self.single, self.pair, self.cross = (_blocks(config, n) for n in
                                              (config.single_layers, config.pair_layers, config.cross_layers))
        self.norm = nn.LayerNorm(d)
        self.word_head = nn.Linear(d, vocab_size)
        self.region_head = nn.Linear(d, feature_dim)
        self.classifier = nn.Linear(2 * d, 1)

    @property
    def n_image_tokens(self) -> int:
        return 2 * (self.n_regions + 1) + 1

    def change_token(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """(B, 1, d): the two images' features pooled over the cells that changed most.

        w = softmax_i(s |f_after,i - f_before,i|), token = W_c [sum_i w_i f_before,i ; sum_i w_i f_after,i]
        """
        weights = torch.softmax(self.sharpness * (after - before).norm(dim=-1), -1)[..., None]
        pooled = torch.cat([(weights * before).sum(1), (weights * after).sum(1)], -1)
        return (self.change(pooled) + self.token_type.weight[IMAGE2])[:, None]

    def encode_pair(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """(B, 2R + 3, d): each image with its CLS through the shared single-image encoder, then the pair encoder
        over [CLS1, image 1, CLS2, image 2, change token]."""
        encoded = []
        for kind, features, other in ((IMAGE1, before, after), (IMAGE2, after, before)):
            cls = self.cls[kind].expand(len(features), 1, -1)
            # cell token = W f + W_diff (f - f_other) + position embedding + type embedding (CLS first)
            cells = self.project(features) + self.project_difference(features - other)
            x = torch.cat([cls, cells], 1) + self.region_position.weight + self.token_type.weight[kind]
            encoded.append(self.single(x))
        return self.pair(torch.cat(encoded + [self.change_token(before, after)], 1))

    def cross_modal(self, pair: torch.Tensor, ids: torch.Tensor, attention: str, with_cls3: bool) -> torch.Tensor:
        """(B, 2R + 3 + T (+1), d) outputs over [pair tokens, (CLS3,) text tokens]; pads are never attended to."""
        batch, length = ids.shape
        text = self.word(ids) + self.text_position.weight[1 : length + 1]
        padding = ids == self.pad_id
        if with_cls3:
            text = torch.cat([(self.cls[TEXT] + self.text_position.weight[0]).expand(batch, 1, -1), text], 1)
            padding = torch.cat([torch.zeros(batch, 1, dtype=torch.bool, device=ids.device), padding], 1)
        x = torch.cat([pair, text + self.token_type.weight[TEXT]], 1)
        mask = attention_mask(pair.shape[1], text.shape[1], attention).to(ids.device)
        padding = torch.cat([torch.zeros(batch, pair.shape[1], dtype=torch.bool, device=ids.device), padding], 1)
        return self.norm(self.cross(x, mask=mask, src_key_padding_mask=padding))

    def pseudo_mask_outputs(self, pair: torch.Tensor, ids: torch.Tensor, mask_id: int) -> torch.Tensor:
        """(B, T, d) outputs at one pseudo <mask> per caption position (UniLM's sequence-to-sequence fine-tuning):
        the text part is [w_1..w_T, M_1..M_T]; w_i sees the images and w_1..w_i, M_i sees the images, w_1..w_(i-1)
        and itself, at w_i's position. So every word is predicted from a clean left context, as when decoding."""
        batch, length = ids.shape
        position = self.text_position.weight[1 : length + 1]
        words = self.word(ids) + position
        masks = self.word(torch.full_like(ids, mask_id)) + position
        x = torch.cat([pair, torch.cat([words, masks], 1) + self.token_type.weight[TEXT]], 1)
        n = pair.shape[1]
        mask = attention_mask(n, 2 * length, "unilm").to(ids.device)
        eye = torch.eye(length, dtype=torch.bool, device=ids.device)
        mask[n + length :, n : n + length] = torch.triu(torch.ones_like(eye), diagonal=0)  # M_i sees w_j for j < i
        mask[n + length :, n + length :] = ~eye  # and, of the masks, itself only
        padding = torch.cat([torch.zeros(batch, n, dtype=torch.bool, device=ids.device), ids == self.pad_id,
                             ids == self.pad_id], 1)
        return self.norm(self.cross(x, mask=mask, src_key_padding_mask=padding))[:, n + length :]

    def forward(self, before: torch.Tensor, after: torch.Tensor, ids: torch.Tensor, attention: str = "full",
                with_cls3: bool = True) -> torch.Tensor:
        """Outputs of the whole model: `encode_pair` then `cross_modal`."""
        return self.cross_modal(self.encode_pair(before, after), ids, attention, with_cls3)

    def change_logit(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B,) logit that the pair changed, from the CLS1 and CLS2 outputs."""
        return self.classifier(torch.cat([hidden[:, 0], hidden[:, self.n_regions + 1]], -1)).squeeze(-1)


def build_model(config: IdcConfig, feature_dim: int, n_regions: int, vocab_size: int, pad_id: int = 0):
    """A freshly initialised DifferenceTransformer, seeded by config.seed.

    Introduced in notebook 05_idc_difference_captioning.
    """
    torch.manual_seed(config.seed)
    return DifferenceTransformer(config, feature_dim, n_regions, vocab_size, pad_id)
