"""A DCGAN of the shapes world with named layers, a fixed latent bank, and its training.

The generator maps a latent code z to an image through named layers ("layer1" ... "layer4", each doubling the
side of its feature map) and an output layer ("to_rgb"). Dissection reads the feature map after a named layer
(`features`) and editing continues from an edited one (`from_layer`). A sample's id is its index in the latent
bank `latent_bank(seed, n, dim)`, as in the seed paper's data: an id regenerates its image.
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tutorlib.training import History, train_loop
from tutorlib.world.views.captioned import CaptionedScenes

LAYERS = ("layer1", "layer2", "layer3", "layer4")


@dataclass(frozen=True)
class GanConfig:
    """The GAN's architecture and training. Introduced in notebook 03_drawing_gan_units."""

    image_size: int = 64  # side of the generated images (16 x the side of layer1's map)
    z_dim: int = 64  # length of a latent code
    widths: tuple[int, ...] = (256, 128, 64, 32)  # channels of layer1 ... layer4
    d_width: int = 32  # channels of the discriminator's first convolution (doubled per level)
    steps: int = 4000  # optimizer steps (one discriminator and one generator update each)
    batch: int = 64  # images per step
    lr: float = 2e-4  # Adam learning rate of both networks
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas (DCGAN's)
    pool: int = 20000  # real renders trained on
    n_objects: tuple[int, int] = (1, 3)  # objects per real scene
    world_seed: int = 1000  # seed of the real renders
    seed: int = 0  # initialisation and batch order
    ema_decay: float = 0.0  # the kept generator is a moving average of the trained weights (0: the last weights;
    # 0.999 was measured worse here: the average of an oscillating GAN draws faint scenes, 218 of 300 empty floors)
    recipe: int = 3  # version of the training code (2: minibatch std in the discriminator; 3: the EMA generator)


def check_layer(layer: str) -> str:
    """`layer` if it names a generator layer, else a ValueError listing them. Introduced in notebook 03."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; valid layers: {list(LAYERS)}")
    return layer


def latent_bank(seed: int, n: int, dim: int) -> torch.Tensor:
    """(n, dim) standard normal codes; row i is sample i, the same for any n (numpy draws them in order).

    Introduced in notebook 03_drawing_gan_units.
    """
    if n < 0 or dim < 1:
        raise ValueError(f"need n >= 0 and dim >= 1, got n={n}, dim={dim}")
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))


def bank_codes(ids: Sequence[int], seed: int, dim: int) -> torch.Tensor:
    """The codes of samples `ids` of the bank `seed`. Introduced in notebook 03_drawing_gan_units."""
    ids = torch.as_tensor(list(ids), dtype=torch.long)
    if len(ids) and int(ids.min()) < 0:
        raise ValueError("sample ids are bank indices: they must be >= 0")
    return latent_bank(seed, int(ids.max()) + 1 if len(ids) else 0, dim)[ids]


def _up(c_in: int, c_out: int) -> nn.Sequential:
    # a transposed 4x4 convolution of stride 2 doubles the side
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class Generator(nn.Module):
    """z (N, z_dim) -> image (N, 3, S, S) in [-1, 1] through named layers. Introduced in notebook 03."""

    def __init__(self, config: GanConfig):
        super().__init__()
        if config.image_size % 16 or len(config.widths) != len(LAYERS):
            raise ValueError(f"image_size must be a multiple of 16 and widths must have {len(LAYERS)} entries")
        self.config = config
        start, w = config.image_size // 16, config.widths
        self.layers = nn.ModuleDict({
            "layer1": nn.Sequential(nn.ConvTranspose2d(config.z_dim, w[0], start, 1, 0, bias=False),
                                    nn.BatchNorm2d(w[0]), nn.ReLU()),
            "layer2": _up(w[0], w[1]),
            "layer3": _up(w[1], w[2]),
            "layer4": _up(w[2], w[3]),
        })
        self.to_rgb = nn.Sequential(nn.ConvTranspose2d(w[3], 3, 4, 2, 1), nn.Tanh())

    def features(self, z: torch.Tensor, layer: str) -> torch.Tensor:
        """The feature map (N, units, h, w) after `layer`."""
        check_layer(layer)
        x = z[:, :, None, None]
        for name, module in self.layers.items():
            x = module(x)
            if name == layer:
                return x
        raise AssertionError("unreachable")

    def from_layer(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """The image from a (possibly edited) feature map `x` taken after `layer`."""
        start = LAYERS.index(check_layer(layer)) + 1
        for name in LAYERS[start:]:
            x = self.layers[name](x)
        return self.to_rgb(x)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.from_layer(self.features(z, LAYERS[0]), LAYERS[0])


class Discriminator(nn.Module):
    """image (N, 3, S, S) -> one logit per image (real > 0). Introduced in notebook 03_drawing_gan_units."""

    def __init__(self, config: GanConfig):
        super().__init__()
        d, start = config.d_width, config.image_size // 16
        # spectral normalisation keeps the discriminator 1-Lipschitz per layer, so it cannot overpower the generator
        sn = nn.utils.parametrizations.spectral_norm
        blocks: list[nn.Module] = [sn(nn.Conv2d(3, d, 4, 2, 1)), nn.LeakyReLU(0.2)]
        for k in range(3):
            blocks += [sn(nn.Conv2d(d << k, d << (k + 1), 4, 2, 1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*blocks)
        self.head = sn(nn.Conv2d((d << 3) + 1, 1, start))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features(images)
        # minibatch standard deviation (ProGAN): the mean over features of the batch's standard deviation, one
        # extra channel, so a batch of near-identical fakes is easy to spot and the generator keeps its variety
        spread = x.std(dim=0, unbiased=False).mean() if len(x) > 1 else x.new_zeros(())
        x = torch.cat([x, spread.expand(len(x), 1, *x.shape[2:])], dim=1)
        return self.head(x).flatten()


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 images. Introduced in notebook 03_drawing_gan_units."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> [-1, 1] floats. Introduced in notebook 03_drawing_gan_units."""
    return images.float() / 127.5 - 1


@torch.no_grad()
def generate(generator: Generator, ids: Sequence[int] | None = None, z: torch.Tensor | None = None,
             bank_seed: int = 0, batch: int = 256) -> torch.Tensor:
    """uint8 images (N, 3, S, S) of bank samples `ids` (bank `bank_seed`) or of codes `z`.

    Introduced in notebook 03_drawing_gan_units.
    """
    if (ids is None) == (z is None):
        raise ValueError("give either ids (bank indices) or z (codes), not both")
    if z is None:
        z = bank_codes(ids, bank_seed, generator.config.z_dim)
    device = next(generator.parameters()).device
    generator.eval()
    out = [to_uint8(generator(z[k : k + batch].to(device))).cpu() for k in range(0, len(z), batch)]
    return torch.cat(out) if out else torch.zeros(0, 3, generator.config.image_size, generator.config.image_size,
                                                  dtype=torch.uint8)


def real_pool(config: GanConfig) -> torch.Tensor:
    """The real renders the GAN learns from, uint8 (pool, 3, S, S). Introduced in notebook 03_drawing_gan_units."""
    return CaptionedScenes(config.pool, config.image_size, config.world_seed, config.n_objects, progress=False).images


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """softplus(-D(x)) + softplus(D(G(z))) = -log sigma(D(x)) - log(1 - sigma(D(G(z)))), each averaged over the
    batch. Introduced in notebook 03_drawing_gan_units."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss softplus(-D(G(z))) = -log sigma(D(G(z))), averaged over the batch.
    Introduced in notebook 03_drawing_gan_units."""
    return F.softplus(-fake_logits).mean()


def train_gan(generator: Generator, discriminator: Discriminator, config: GanConfig, device: torch.device,
              checkpoint: Path | None = None, real: torch.Tensor | None = None) -> History:
    """Train with the non-saturating GAN loss; resumable through `checkpoint`. `generator` ends up holding the
    moving average of the trained weights (its batch-norm statistics re-measured), which is steadier than the
    last step's weights: GAN training oscillates.

    Discriminator: softplus(-D(x)) + softplus(D(G(z))) = -log sigma(D(x)) - log(1 - sigma(D(G(z))));
    generator: softplus(-D(G(z))) = -log sigma(D(G(z))); average: w_ema <- d w_ema + (1 - d) w, d = ema_decay.
    Introduced in notebook 03_drawing_gan_units.
    """
    real = real_pool(config) if real is None else real
    generator.to(device).train()
    discriminator.to(device).train()
    ema = copy.deepcopy(generator).requires_grad_(False)
    opt_g = torch.optim.Adam(generator.parameters(), config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), config.lr, betas=config.betas)

    def batch_at(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        # a function of the step, so a resumed run draws the same batches
        g = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        index = torch.randint(len(real), (config.batch,), generator=g)
        return to_signed(real[index]).to(device), torch.randn(config.batch, config.z_dim, generator=g).to(device)

    def step_fn(batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, float]:
        x, z = batch
        fake = generator(z)
        loss_d = discriminator_loss(discriminator(x), discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss(discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            for average, weight in zip(ema.parameters(), generator.parameters()):
                average.lerp_(weight, 1 - config.ema_decay)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    history = train_loop(step_fn, batch_at, config.steps, device=device, desc="train GAN", checkpoint=checkpoint,
                         state={"generator": generator, "discriminator": discriminator, "opt_g": opt_g,
                                "opt_d": opt_d, "ema": ema} if checkpoint else None, checkpoint_every=200,
                         log_every=20)
    generator.load_state_dict(ema.state_dict())
    recalibrate_batchnorm(generator, config, device)
    return history


@torch.no_grad()
def recalibrate_batchnorm(generator: Generator, config: GanConfig, device: torch.device, batches: int = 20) -> None:
    """Re-measure the batch-norm running statistics of `generator` as the plain average over `batches` batches of
    fresh codes (averaged weights need their own statistics); leaves it in eval mode. Introduced in notebook 03."""
    g = torch.Generator().manual_seed(config.seed + 7)
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    generator.train()
    for _ in range(batches):
        generator(torch.randn(config.batch, config.z_dim, generator=g).to(device))
    for m in norms:
        m.momentum = 0.1
    generator.eval()
