"""The SSCR notebook's settings, one constructor per profile. Introduced in notebook 01_sscr_iterative_editing."""
from __future__ import annotations

from dataclasses import dataclass, replace

from tutorlib.profiles import by_profile, dry_from


@dataclass(frozen=True)
class SscrConfig:
    """Everything the SSCR notebook varies: data, model sizes, the three-stage schedule and the loss weights."""

    image_size: int = 32  # side of the canvases (i-CLEVR: 128)
    n_train: int = 1000  # training dialogues at share 1.0 (i-CLEVR: 6000)
    n_test: int = 200  # test dialogues, each scored on its final turn
    turns: int = 5  # turns per dialogue (one object each)
    shares: tuple[float, ...] = (1.0, 0.2)  # shares of the training dialogues (data scarcity)
    word_dim: int = 64  # word embedding (GloVe 300 in the paper; learned here)
    text_dim: int = 128  # instruction encoding, a bidirectional GRU (1024 in the paper)
    history_dim: int = 128  # dialogue-state GRU over the turns (1024 in the paper)
    cond_dim: int = 64  # conditioning augmentation (256 in the paper)
    noise_dim: int = 32  # generator noise z (100 in the paper)
    channels: int = 16  # base width of the generator and the discriminator
    batch: int = 8  # dialogues per step (every turn of each is used: batch * turns canvases)
    lr_g: float = 4e-4  # Adam learning rate of the generator (the paper: 1e-4; raised for the short CPU budget)
    lr_d: float = 4e-4  # Adam learning rate of the discriminator (the paper's)
    lambda_aux: float = 5.0  # weight of the auxiliary object loss (i-CLEVR: 5)
    gamma_r1: float = 1.0  # weight of the R1 penalty on real images
    r1_every: int = 4  # R1 is computed every r1_every steps, weighted by r1_every (lazy regularisation)
    lambda_rec: float = 100.0  # weight of the L1 reconstruction of the canvas and its change (not in GeNeVA;
    # pix2pix's weight): without it the GAN alone does not learn what to draw on a CPU budget (notebook, section 2)
    lambda_kl: float = 1.0  # weight of the KL of the conditioning augmentation
    lambda_explainer: float = 1.0  # weight of the frozen explainer's token loss (real and counterfactual)
    baseline_steps: int = 500  # stage 1: the editor alone
    explainer_steps: int = 1800  # stage 2: the explainer on ground-truth pairs (until it reads shapes: section 7)
    sscr_steps: int = 150  # stage 3: continued from stage 1, once plain and once with SSCR
    explainer_lr: float = 3e-3  # Adam learning rate of the explainer
    detector_steps: int = 250  # steps of the evaluation detector (128 canvases each)
    detector_lr: float = 2e-3  # Adam learning rate of the detector
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "SscrConfig":
        """Smoke: every stage for a few steps; standard: the claim on a CPU at 32 px; full: 64 px on a GPU; dry: full's
        models with smoke's dialogues."""
        smoke = cls(n_train=40, n_test=16, shares=(1.0, 0.5), text_dim=32, history_dim=32, word_dim=16, cond_dim=16,
                    noise_dim=8, channels=8, batch=4, baseline_steps=4, explainer_steps=4, sscr_steps=3,
                    detector_steps=10, seed=seed)
        # full: 3 seeds x 2 shares in about 10 minutes on one GPU (an estimate: not measured here).
        full = cls(image_size=64, n_train=6000, n_test=1000, channels=32, batch=32, text_dim=256, history_dim=256,
                   cond_dim=128, noise_dim=64, baseline_steps=1000, explainer_steps=1000, sscr_steps=400,
                   detector_steps=1000, seed=seed)
        return by_profile(profile, smoke=smoke, standard=cls(seed=seed), full=full,
                          dry=dry_from(full, smoke, "n_train", "n_test", "shares"))

    def with_seed(self, seed: int) -> "SscrConfig":
        """The same settings for another seed."""
        return replace(self, seed=seed)
