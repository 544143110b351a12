"""The three-stage schedule of SSCR: (1) the editor alone, (2) the explainer on ground-truth pairs, (3) the
editor continued from stage 1, once plain (the baseline) and once with counterfactual reasoning (SSCR).

Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tutorlib.training import History, train_loop
from tutorlib.world.text import Vocabulary

from .config import SscrConfig
from .counterfactual import counterfactual
from .data import DialogueTensors, to_signed
from .detector import Detector, detector_loss
from .editor import Discriminator, Editor, aux_bce, change_l1, hinge_d, hinge_g, kl_loss, r1_penalty
from .explainer import Explainer
from .text import encode

BETAS = (0.0, 0.9)  # Adam betas of the GAN (the paper's)
DETECTOR_BATCH = 128  # canvases per detector step


def batch_indices(n: int, batch: int, seed: int, step: int) -> torch.Tensor:
    """The dialogues of a step: a function of (seed, step) only, so two runs see the same batches."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randperm(n, generator=generator)[:batch] if n >= batch else torch.randint(n, (batch,), generator=generator)


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, *x.shape[2:])


@dataclass
class GanParts:
    """The editor, its discriminator and their optimizers: what stage 3 copies from the stage-1 checkpoint."""

    editor: Editor
    discriminator: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    @classmethod
    def create(cls, config: SscrConfig, vocab_size: int, device) -> "GanParts":
        editor, discriminator = Editor(config, vocab_size).to(device), Discriminator(config).to(device)
        return cls(editor, discriminator, torch.optim.Adam(editor.parameters(), config.lr_g, betas=BETAS),
                   torch.optim.Adam(discriminator.parameters(), config.lr_d, betas=BETAS))

    def copy(self) -> "GanParts":
        """An independent twin with the same weights and optimizer states (spectral norm rules out deepcopy)."""
        twin = GanParts.create(self.editor.config, self.editor.text.embed.num_embeddings,
                               next(self.editor.parameters()).device)
        for name in ("editor", "discriminator", "opt_g", "opt_d"):
            getattr(twin, name).load_state_dict(getattr(self, name).state_dict())
        return twin


def counterfactual_ids(batch: dict, vocab: Vocabulary, instructions: list[str], rng: np.random.Generator):
    """Token ids and lengths of one counterfactual per instruction (same padded width as the batch)."""
    encoded = encode(vocab, [counterfactual(t, rng) for t in instructions], batch["ids"].shape[-1])
    return encoded.ids.to(batch["ids"].device), encoded.lengths


def gan_step(parts: GanParts, batch: dict, config: SscrConfig, explainer: Explainer | None = None,
             counterfactuals: tuple[torch.Tensor, torch.Tensor] | None = None, r1_every: int = 1) -> dict[str, float]:
    """One discriminator and one generator update on every turn of a batch of dialogues (teacher forcing).

    D: hinge(real, wrong, fake) + lambda_aux BCE(aux(real), added) + gamma R1(real), "wrong" = a real canvas
       under another dialogue's state at the same turn (R1 only when r1_every > 0, then weighted by r1_every;
       pass 0 on the steps in between).
    G: -D(fake) + lambda_aux BCE(aux(fake), added) + lambda_kl KL + lambda_rec L1(fake, real on canvas and change),
       and with a frozen `explainer` (SSCR):
       + lambda_explainer (CE(I | x_prev, fake) + CE(I' | x_prev, fake')), fake' drawn for the counterfactual I'.
    Introduced in notebook 01_sscr_iterative_editing.
    """
    editor, discriminator = parts.editor, parts.discriminator
    states = editor.condition(batch["ids"], batch["lengths"])
    h = _flat(states)
    real, previous = _flat(batch["images"]).requires_grad_(True), _flat(batch["previous"])
    added = _flat(batch["added"])
    fake, mu, logvar = editor(previous, h)

    # Discriminator: f(x_prev) and f(real) are computed once; "wrong" reuses phi(real) under another dialogue's
    # state at the same turn (GeNeVA rolls the batch at each turn): wrong[i, k] = h[i - 1, k].
    previous_features = discriminator.image(previous)
    phi_real = discriminator.pool(discriminator.image(real), previous_features)
    wrong_h = _flat(states.detach().roll(1, 0))
    d_real, d_wrong = discriminator.judge(phi_real, h.detach()), discriminator.judge(phi_real, wrong_h)
    d_fake = discriminator.judge(discriminator.pool(discriminator.image(fake.detach()), previous_features), h.detach())
    loss_aux_d = aux_bce(discriminator.aux(phi_real), added)
    loss_d = hinge_d(d_real, d_wrong, d_fake) + config.lambda_aux * loss_aux_d
    if r1_every:
        # Lazy R1 (every r1_every steps, weighted by r1_every): the same penalty on average, fewer double backwards.
        loss_r1 = r1_penalty(d_real, real)
        loss_d = loss_d + config.gamma_r1 * r1_every * loss_r1
    parts.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    parts.opt_d.step()

    # Generator (the discriminator's gradients are not used).
    with torch.no_grad():
        previous_features = discriminator.image(previous)
    phi_fake = discriminator.pool(discriminator.image(fake), previous_features)
    d_fake, aux_fake = discriminator.judge(phi_fake, h), discriminator.aux(phi_fake)
    loss_adv, loss_aux_g, loss_kl = hinge_g(d_fake), aux_bce(aux_fake, added), kl_loss(mu, logvar)
    loss_rec = change_l1(fake, real.detach(), previous)
    loss_g = loss_adv + config.lambda_aux * loss_aux_g + config.lambda_kl * loss_kl + config.lambda_rec * loss_rec
    losses = {"D": loss_d.item(), "D aux": loss_aux_d.item(), "G adversarial": loss_adv.item(),
              "G aux": loss_aux_g.item(), "KL": loss_kl.item(), "G reconstruction": loss_rec.item()}
    if r1_every:
        losses["R1"] = loss_r1.item()
    if explainer is not None:
        history = _flat(explainer.history_states(batch["ids"]))
        ids = _flat(batch["ids"])
        loss_real = explainer.loss(previous, fake, history, ids)
        cf_ids, cf_lengths = counterfactuals
        previous_states = _flat(torch.cat([torch.zeros_like(states[:, :1]), states[:, :-1]], dim=1))
        cf_fake, _, _ = editor(previous, editor.step(cf_ids, cf_lengths, previous_states))
        loss_cf = explainer.loss(previous, cf_fake, history, cf_ids)
        loss_g = loss_g + config.lambda_explainer * (loss_real + loss_cf)
        losses.update({"explainer (real)": loss_real.item(), "explainer (counterfactual)": loss_cf.item()})
    parts.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    parts.opt_g.step()
    return losses


def train_editor(parts: GanParts, data: DialogueTensors, config: SscrConfig, steps: int, vocab: Vocabulary,
                 device, explainer: Explainer | None = None, desc: str = "editor", first_step: int = 0) -> History:
    """`steps` GAN steps on `data`; with a frozen explainer, the SSCR losses (real and counterfactual).

    Batches and counterfactuals depend on (seed, step) only, so a plain run and an SSCR run from the same
    checkpoint see the same dialogues. Introduced in notebook 01_sscr_iterative_editing.
    """
    parts.editor.train(), parts.discriminator.train()
    noise = torch.Generator().manual_seed(config.seed)
    if explainer is not None:
        explainer.eval().requires_grad_(False)
    torch.manual_seed(config.seed + first_step)

    def step_fn(indices, step):
        batch = data.batch(indices, device, noise)
        counterfactuals = None
        if explainer is not None:
            rng = np.random.default_rng([config.seed, first_step + step])
            texts = [data.instructions[i][k] for i in indices.tolist() for k in range(data.turns)]
            counterfactuals = counterfactual_ids(batch, vocab, texts, rng)
        r1_every = config.r1_every if (first_step + step) % config.r1_every == 0 else 0
        return gan_step(parts, batch, config, explainer, counterfactuals, r1_every)

    return train_loop(step_fn, lambda step: batch_indices(len(data), config.batch, config.seed, first_step + step),
                      steps, device=device, desc=desc, amp=False)


def train_explainer(explainer: Explainer, data: DialogueTensors, config: SscrConfig, device,
                    desc: str = "explainer") -> History:
    """Stage 2: token cross-entropy of the true instruction from ground-truth (previous, current) canvases.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    explainer.train()
    optimizer = torch.optim.Adam(explainer.parameters(), config.explainer_lr)
    noise = torch.Generator().manual_seed(config.seed + 1)

    def step_fn(indices, step):
        batch = data.batch(indices, device, noise)
        history = _flat(explainer.history_states(batch["ids"]))
        loss = explainer.loss(_flat(batch["previous"]), _flat(batch["images"]), history, _flat(batch["ids"]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"token cross-entropy": loss.item()}

    return train_loop(step_fn, lambda step: batch_indices(len(data), config.batch, config.seed + 7, step),
                      config.explainer_steps, device=device, desc=desc, amp=False)


def train_detector(detector: Detector, data: DialogueTensors, config: SscrConfig, device) -> History:
    """The evaluation detector on every ground-truth canvas of `data` and the empty background.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    detector.train()
    optimizer = torch.optim.Adam(detector.parameters(), config.detector_lr)
    images = torch.cat([_flat(data.images), data.background[None]])
    objects = torch.cat([_flat(data.objects), torch.zeros(1, data.objects.shape[-1])])
    coords = torch.cat([_flat(data.coords), torch.zeros(1, *data.coords.shape[2:])])
    noise = torch.Generator().manual_seed(config.seed)
    per_step = DETECTOR_BATCH

    def step_fn(indices, step):
        loss = detector_loss(detector, to_signed(images[indices], noise).to(device), objects[indices].to(device),
                             coords[indices].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"detector loss": loss.item()}

    return train_loop(step_fn, lambda step: batch_indices(len(images), per_step, 12345, step),
                      config.detector_steps, device=device, desc="detector", amp=False)


@torch.no_grad()
def draw_dialogues(editor: Editor, ids: torch.Tensor, lengths: torch.Tensor, background: torch.Tensor, device,
                   seed: int = 0, batch: int = 100) -> torch.Tensor:
    """Test-time editing: every turn draws on the editor's OWN previous canvas, from the background.

    ids (N, T, L), lengths (N, T), background (3, S, S) uint8 -> canvases (N, T, 3, S, S) in [-1, 1].
    Introduced in notebook 01_sscr_iterative_editing.
    """
    editor.eval()
    torch.manual_seed(seed)
    out = []
    for start in range(0, len(ids), batch):
        chunk_ids, chunk_lengths = ids[start : start + batch].to(device), lengths[start : start + batch].to(device)
        states = editor.condition(chunk_ids, chunk_lengths)
        canvas = to_signed(background).to(device).expand(len(chunk_ids), *background.shape)
        turns = []
        for t in range(ids.shape[1]):
            canvas = editor(canvas, states[:, t])[0]
            turns.append(canvas)
        out.append(torch.stack(turns, dim=1).cpu())
    editor.train()
    return torch.cat(out)
