"""The SIMAT notebook's settings, one constructor per profile. Introduced in notebook 02_simat_delta_retrieval."""
from __future__ import annotations

from dataclasses import dataclass

from tutorlib.clip import ClipConfig
from tutorlib.profiles import by_profile, dry_from


@dataclass(frozen=True)
class SimatConfig:
    """Everything the SIMAT notebook varies."""

    clip: ClipConfig  # the world CLIP trained for this seed
    images_per_caption: int = 4  # database images per triplet (144 triplets by default)
    image_size: int = 64  # rendered side of the database images
    lambdas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)  # the sweep of the delta weight
    taus: tuple[float, ...] = (0.1, 0.01)  # temperatures of the adaptation heads
    head_pairs: int = 8192  # world image-caption pairs the heads are trained on
    head_steps: int = 600  # optimizer steps of the heads
    head_lr: float = 1e-3  # Adam learning rate of the heads
    head_batch: int = 256  # pairs per head step
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "SimatConfig":
        """Smoke: tiny and fast; standard: the claim on a CPU; full: a larger CLIP on a GPU;
        dry: full's models with smoke's data."""
        smoke = cls(ClipConfig.for_profile("smoke", seed), images_per_caption=1, head_pairs=512, head_steps=20,
                    lambdas=(0.0, 1.0), seed=seed)
        full = cls(ClipConfig.for_profile("full", seed), images_per_caption=8, head_pairs=32768, head_steps=2000,
                   seed=seed)
        return by_profile(profile, smoke=smoke, standard=cls(ClipConfig.for_profile("standard", seed), seed=seed),
                          full=full, dry=dry_from(full, smoke, "images_per_caption", "head_pairs", "lambdas"))
