"""A tiny GAN trained through train_gan with a checkpoint, slowed down so that a test can interrupt it mid-step.

    python tests/scripts/interruptible_gan.py CHECKPOINT OUT.safetensors STARTED_MARKER
"""
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from tutorlib.drawing.gan import Discriminator, GanConfig, Generator, train_gan

TINY = replace(GanConfig(), image_size=32, z_dim=8, widths=(16, 8, 8, 4), d_width=4, steps=200, batch=4, pool=16)


def main(checkpoint: str, out: str, started: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(TINY.seed)
    generator, discriminator = Generator(TINY), Discriminator(TINY)
    real = torch.randint(0, 256, (TINY.pool, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))

    def slow(module, inputs, output):
        # a window inside the step (between the discriminator's and the generator's updates), where signals land
        Path(started).touch()
        time.sleep(0.01)

    discriminator.register_forward_hook(slow)
    train_gan(generator, discriminator, TINY, torch.device("cpu"), checkpoint=Path(checkpoint), real=real)
    save_file({k: v.contiguous() for k, v in generator.state_dict().items()}, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
