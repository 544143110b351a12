"""The IDC notebook's settings, one constructor per profile. Introduced in notebook 05_idc_difference_captioning."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tutorlib.profiles import by_profile, dry_from

from .features import GridCnnConfig

TASKS = ("mlm", "mvcl", "fda")


@dataclass(frozen=True)
class IdcConfig:
    """Everything the IDC notebook varies: data, grid features, model, pretraining, fine-tuning, decoding."""

    features: GridCnnConfig  # the grid CNN that turns each image into k x k feature vectors
    n_pairs: int = 2000  # change pairs generated (train 80%, val 10%, test 10%); the data seed is fixed at 0
    image_size: int = 64  # rendered side of the images
    d_model: int = 64  # width of every transformer block
    heads: int = 4  # attention heads per block
    single_layers: int = 1  # blocks of the shared single-image encoder
    pair_layers: int = 1  # blocks of the pair encoder
    cross_layers: int = 2  # blocks of the cross-modal transformer
    dropout: float = 0.1  # dropout inside the blocks
    max_text: int = 16  # caption tokens, <eos> included
    tasks: tuple[str, ...] = TASKS  # pretraining tasks; () means no pretraining
    task_weights: tuple[float, ...] = (8.0, 1.0, 2.0)  # sampling weight of mlm, mvcl, fda (the paper's 8:1:2)
    pretrain_steps: int = 400  # pretraining optimizer steps (one task per step)
    finetune_steps: int = 1000  # fine-tuning optimizer steps on all training pairs
    reduced_finetune_steps: int = 200  # fine-tuning optimizer steps on the reduced set (a tenth of the pairs)
    batch_size: int = 32  # pairs per step, in both stages
    lr: float = 2e-3  # peak Adam learning rate, after a linear warm-up, then cosine decay
    warmup: int = 30  # warm-up steps
    mask_prob: float = 0.15  # share of caption tokens masked by MLM; at least one per caption
    finetune_mask_prob: float = 0.0  # fine-tuning: > 0, the paper's share of words masked and predicted;
    # 0, every word predicted through its own pseudo <mask> (UniLM's sequence-to-sequence fine-tuning)
    region_mask_prob: float = 0.15  # share of image regions zeroed (MVCL); at least one
    n_negatives: int = 4  # hard negative captions per pair (FDA; the paper has 6): half retrieved by TF-IDF, half swaps
    fda_tau: float = 0.1  # temperature of FDA's softmax over cosine similarities
    mvcl_tau: float = 0.1  # temperature of MVCL's softmax
    reduced_share: float = 0.1  # share of the training pairs in the reduced fine-tuning set
    beam_size: int = 3  # beams of beam search
    seed: int = 0  # model initialisation, masking and batch order

    def replace(self, **changes) -> "IdcConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def model_key(self) -> dict:
        """The fields a pretrained model depends on (the cache key of pretraining)."""
        skip = {"finetune_steps", "reduced_finetune_steps", "finetune_mask_prob", "reduced_share", "beam_size"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}

    def steps_for(self, share: float) -> int:
        """Fine-tuning steps on a share of the training pairs: finetune_steps for all of them,
        reduced_finetune_steps for fewer. Introduced in notebook 05_idc_difference_captioning."""
        return self.finetune_steps if share >= 1.0 else self.reduced_finetune_steps

    def task_alone(self, task: str) -> "IdcConfig":
        """Pretraining on `task` alone for the steps it gets inside the mix of all tasks (the ablation of
        notebook 05_idc_difference_captioning): the three single-task runs add up to the mixed one."""
        # steps = pretrain_steps * weight of the task / sum of all weights
        weight = self.task_weights[TASKS.index(task)]
        return self.replace(tasks=(task,), pretrain_steps=round(self.pretrain_steps * weight / sum(self.task_weights)))

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "IdcConfig":
        """Smoke: tiny and fast; standard: the claim on a CPU; full: more data, a wider model, longer, on a GPU;
        dry: full's models with smoke's data.

        Introduced in notebook 05_idc_difference_captioning.
        """
        smoke = cls(GridCnnConfig(image_size=32, grid=2, width=8, steps=10, batch_size=16), n_pairs=150,
                    image_size=32, d_model=32, heads=2, cross_layers=1, pretrain_steps=6, finetune_steps=6,
                    reduced_finetune_steps=6, batch_size=16, warmup=2, seed=seed)
        full = cls(GridCnnConfig(steps=3000, batch_size=128), n_pairs=10000, d_model=256, heads=8, cross_layers=3,
                   pretrain_steps=8000, finetune_steps=6000, reduced_finetune_steps=2000, batch_size=128, lr=5e-4,
                   warmup=500, n_negatives=6, seed=seed)
        return by_profile(profile, smoke=smoke, standard=cls(GridCnnConfig(), seed=seed), full=full,
                          dry=dry_from(full, smoke, "n_pairs"))
