"""The VisMin notebook's settings, one constructor per profile. Introduced in notebook 04_vismin_minimal_change."""
from __future__ import annotations

from dataclasses import dataclass

from tutorlib.clip import ClipConfig
from tutorlib.profiles import by_profile, dry_from

from .finetune import FinetuneConfig
from .grounding import GroundingConfig
from .inpainting import InpaintConfig
from .pipeline import PipelineConfig
from .vqa import VqaConfig


@dataclass(frozen=True)
class VisminConfig:
    """Everything the VisMin notebook varies."""

    clip: ClipConfig  # the world CLIP of notebook 02 (loaded from the cache, trained when absent)
    grounding: GroundingConfig  # the phrase grounder standing in for Grounding-DINO
    inpaint: InpaintConfig  # the diffusion inpainter
    vqa: VqaConfig  # the VQA model of the filter
    pipeline: PipelineConfig  # how many source images go through the pipeline
    finetune: FinetuneConfig  # the minimal-change fine-tuning of the CLIP
    benchmark: int = 400  # exactly rendered benchmark pairs (100 per category)
    judge_edits: int = 200  # rendered edits (half faulty) on which the oracle judges the filter
    use_shipped_inpainter: bool = True  # load data/checkpoints/vismin-inpainter when its config matches
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "VisminConfig":
        """smoke: every stage on a handful of items; standard: the claim on a CPU with the shipped inpainter;
        full: everything trained here, larger; dry: full's models with smoke's data."""
        smoke = cls(ClipConfig.for_profile("smoke", seed), GroundingConfig.for_profile("smoke", seed),
                    InpaintConfig.for_profile("smoke", seed), VqaConfig.for_profile("smoke", seed),
                    PipelineConfig(sources=16, chunk=8, sample_steps=2, seed=seed, keep=0.0),
                    FinetuneConfig(steps=4, pairs_per_batch=4, seed=seed), benchmark=16, judge_edits=16,
                    use_shipped_inpainter=False, seed=seed)
        full = cls(ClipConfig.for_profile("full", seed), GroundingConfig.for_profile("full", seed),
                   InpaintConfig.for_profile("full", seed), VqaConfig.for_profile("full", seed),
                   PipelineConfig(sources=8000, chunk=500, seed=seed), FinetuneConfig(steps=1000, pairs_per_batch=128, seed=seed),
                   benchmark=2000, judge_edits=1000, use_shipped_inpainter=False, seed=seed)
        dry = dry_from(full, smoke, "grounding.pool", "inpaint.pool", "vqa.pool", "pipeline.sources", "pipeline.chunk",
                       "pipeline.keep", "benchmark", "judge_edits")
        return by_profile(profile, smoke=smoke,
                          standard=cls(ClipConfig.for_profile("standard", seed), GroundingConfig.for_profile("standard", seed),
                                       InpaintConfig.for_profile("standard"), VqaConfig.for_profile("standard", seed),
                                       PipelineConfig(sample_steps=10, seed=seed), FinetuneConfig(seed=seed), seed=seed),
                          full=full, dry=dry)
