"""The drawing notebook's settings, one constructor per profile. Introduced in notebook 03_drawing_gan_units."""
from __future__ import annotations

from dataclasses import dataclass, replace

from tutorlib.profiles import by_profile, dry_from

from .gan import GanConfig
from .segmenter import SegmenterConfig
from .words import WordConfig


@dataclass(frozen=True)
class DrawingConfig:
    """Everything notebook 03 varies."""

    gan: GanConfig  # the GAN (standard: the shipped checkpoint's config)
    segmenter: SegmenterConfig  # the concept segmenter
    words: WordConfig  # the word-learning model on text captions (its seed is set per run)
    speech: WordConfig  # the word-learning model on spoken captions (espeak-ng)
    use_shipped_gan: bool = True  # load data/checkpoints/drawing-gan when its config equals `gan`
    bank_seed: int = 0  # the latent bank: sample id i is row i of latent_bank(bank_seed, ...)
    dissect_samples: int = 300  # GAN samples dissected per layer
    edit_layer: str = "layer2"  # the layer whose units are ablated and inserted
    edit_units: int = 16  # N, the units ablated to make an edited negative
    curve_units: tuple[int, ...] = (1, 4, 16, 64)  # the N of the ablation / insertion curves
    curve_samples: int = 150  # GAN samples the curves are measured on
    dilation: int = 2  # pixels the concept's mask grows by to make the edited region
    word_image_size: int = 48  # side the GAN images are resized to for the word model (48 px fits the CPU budget)
    word_train: int = 2000  # GAN samples the word model is trained on
    word_test: int = 300  # held-out GAN samples of the word evaluations (retrieval over all of them)
    negatives: int = 9  # edited negatives per test image (1 vs 9)
    segmenter_eval: int = 400  # held-out renders the segmenter's IoU is measured on
    quality_samples: int = 300  # GAN samples and renders of the well-formed-objects share
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "DrawingConfig":
        """Smoke: tiny GAN trained for a few steps; standard: the shipped GAN on a CPU; full: trains at 64 px on a GPU;
        dry: full's models with smoke's data."""
        # on a CPU, 300 steps (about 10 passes over the pairs; the margin loss has flattened by then) fit the budget;
        # the speech model trains once, with edited negatives, for 200 steps
        words = WordConfig.for_profile(profile, seed)
        words = replace(words, steps=by_profile(profile, smoke=words.steps, standard=300, full=words.steps))
        speech = WordConfig.for_profile(profile, seed, caption="speech")
        speech = replace(speech, steps=by_profile(profile, smoke=speech.steps, standard=200, full=speech.steps))
        smoke = cls(replace(GanConfig(), image_size=32, widths=(64, 32, 16, 8), d_width=8, steps=30, batch=16, pool=256),
                    replace(SegmenterConfig(), image_size=32, width=8, steps=20, pool=256), words, speech,
                    use_shipped_gan=False, dissect_samples=32, curve_units=(1, 4), curve_samples=32, word_image_size=32,
                    word_train=128, word_test=32, segmenter_eval=32, quality_samples=32, seed=seed)
        full = cls(replace(GanConfig(), widths=(512, 256, 128, 64), d_width=64, steps=8000, batch=128, pool=40000),
                   replace(SegmenterConfig(), width=32, steps=3000, pool=20000), words, speech, use_shipped_gan=False,
                   word_image_size=64, curve_units=(1, 2, 4, 8, 16, 32, 64, 128), dissect_samples=2000,
                   curve_samples=500, word_train=8000, word_test=500, segmenter_eval=1000, quality_samples=1000,
                   seed=seed)
        dry = dry_from(full, smoke, "gan.pool", "segmenter.pool", "dissect_samples", "curve_units", "curve_samples",
                       "word_train", "word_test", "segmenter_eval", "quality_samples")
        return by_profile(profile, smoke=smoke, standard=cls(GanConfig(), SegmenterConfig(), words, speech, seed=seed),
                          full=full, dry=dry)
