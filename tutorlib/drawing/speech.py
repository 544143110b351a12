"""Spoken captions: synthesis with espeak-ng, wav reading and log-mel spectrograms (40 mel bands, 25 ms
windows, 10 ms hop, at 16 kHz), as the audio encoder of "Learning words by drawing images" reads them.

The mel filterbank is built here from its formula (no audio library needed); real recordings
(`audio/{id}.wav` of a drawing folder) go through the same `audio_features`.
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tutorlib.cache import cached_dir
from tutorlib.progress import progress

SAMPLE_RATE = 16000  # Hz: every waveform is resampled to this rate
N_MELS = 40  # mel bands
WINDOW_MS = 25  # analysis window
HOP_MS = 10  # step between frames
LOG_FLOOR = 1e-6  # added before the log so that silence stays finite
INSTALL_HINT = ("espeak-ng is not installed, and spoken captions are synthesised with it. Install it with "
                "`sudo apt-get install espeak-ng` (Debian, Ubuntu) or `brew install espeak-ng` (macOS), or use "
                "text captions (WordConfig(caption='text')).")


def espeak_available() -> bool:
    """Whether the espeak-ng program is on the PATH. Introduced in notebook 03_drawing_gan_units."""
    return shutil.which("espeak-ng") is not None


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A PCM wav file as a mono float32 waveform in [-1, 1] and its sample rate (channels are averaged).

    Introduced in notebook 03_drawing_gan_units.
    """
    try:
        with wave.open(str(path), "rb") as stream:
            width, channels, rate = stream.getsampwidth(), stream.getnchannels(), stream.getframerate()
            frames = stream.readframes(stream.getnframes())
    except (wave.Error, EOFError) as err:
        raise ValueError(f"{path}: not a PCM wav file ({err})") from None
    if width == 1:  # 8-bit wav is unsigned
        samples = (np.frombuffer(frames, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        kind = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(frames, kind).astype(np.float32) / float(np.iinfo(kind).max + 1)
    else:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported; use 8, 16 or 32-bit PCM")
    return samples.reshape(-1, channels).mean(axis=1), rate


def resample(waveform: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """The waveform at `target` Hz, by linear interpolation between samples (enough for 40 mel bands of speech).

    Introduced in notebook 03_drawing_gan_units.
    """
    if rate <= 0 or target <= 0:
        raise ValueError(f"sample rates must be positive, got {rate} and {target}")
    if rate == target or len(waveform) == 0:
        return np.asarray(waveform, dtype=np.float32)
    n = int(round(len(waveform) * target / rate))
    # x_new[k] = x(k * rate / target), read between the two nearest input samples
    return np.interp(np.arange(n) * rate / target, np.arange(len(waveform)), waveform).astype(np.float32)


def hz_to_mel(hz):
    """mel = 2595 log10(1 + hz / 700) (the HTK formula)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    """The inverse of hz_to_mel: hz = 700 (10^(mel / 2595) - 1)."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = 512, rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced in mel from 0 Hz to rate / 2, peak 1.

    Introduced in notebook 03_drawing_gan_units.
    """
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(0, hz_to_mel(rate / 2), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    # filter m rises linearly from edge m to edge m + 1 and falls to 0 at edge m + 2
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.from_numpy(np.clip(np.minimum(rising, falling), 0, None)).float()


def log_mel(waveform: np.ndarray | torch.Tensor, rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(N_MELS, frames) log-mel spectrogram: 25 ms Hann windows (inside 512-sample FFT frames) every 10 ms at
    16 kHz (resampled first); 1 + (samples - 512) // 160 frames.

    Introduced in notebook 03_drawing_gan_units.
    """
    waveform = resample(np.asarray(waveform, dtype=np.float32), rate)
    window, hop = SAMPLE_RATE * WINDOW_MS // 1000, SAMPLE_RATE * HOP_MS // 1000
    n_fft = 2 ** math.ceil(math.log2(window))
    signal = torch.from_numpy(waveform)
    if len(signal) < n_fft:  # a clip shorter than one frame is padded with silence to one frame
        signal = torch.nn.functional.pad(signal, (0, n_fft - len(signal)))
    spectrum = torch.stft(signal, n_fft, hop_length=hop, win_length=window, window=torch.hann_window(window),
                          center=False, return_complex=True)
    # log-mel = log(F |STFT|^2 + floor), F the mel filterbank
    return torch.log(mel_filterbank(N_MELS, n_fft) @ spectrum.abs().pow(2) + LOG_FLOOR)


def audio_features(path: str | os.PathLike) -> torch.Tensor:
    """The log-mel spectrogram (N_MELS, frames) of a wav file, e.g. a drawing folder's audio/{id}.wav.

    Introduced in notebook 03_drawing_gan_units.
    """
    return log_mel(*read_wav(path))


def synthesize(text: str, voice: str = "en", speed: int = 175) -> tuple[np.ndarray, int]:
    """The waveform and sample rate of `text` spoken by espeak-ng (`voice`, `speed` in words per minute).

    Introduced in notebook 03_drawing_gan_units.
    """
    if not espeak_available():
        raise RuntimeError(INSTALL_HINT)
    if not text.strip():
        raise ValueError("cannot speak an empty caption")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "caption.wav"
        result = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), "--", text],
                                capture_output=True, text=True)
        if result.returncode != 0 or not path.is_file():
            raise RuntimeError(f"espeak-ng failed on {text!r}: {result.stderr.strip() or result.returncode}")
        return read_wav(path)


def spoken_captions(texts: Sequence[str], voice: str = "en", speed: int = 175, workers: int = 2,
                    show_progress: bool = True) -> list[torch.Tensor]:
    """Log-mel spectrograms (N_MELS, frames_i) of `texts` spoken by espeak-ng, cached by the texts and voice
    (synthesis takes about 25 ms per caption; `workers` espeak-ng processes run at once).

    Introduced in notebook 03_drawing_gan_units.
    """
    texts = list(texts)
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    key = {"texts": digest, "n": len(texts), "voice": voice, "speed": speed, "n_mels": N_MELS,
           "window_ms": WINDOW_MS, "hop_ms": HOP_MS, "rate": SAMPLE_RATE}

    def build(folder: Path) -> None:
        if not espeak_available():
            raise RuntimeError(INSTALL_HINT)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            spoken = pool.map(lambda text: log_mel(*synthesize(text, voice, speed)), texts)
            features = list(progress(spoken, total=len(texts), desc="speak captions",
                                     **({} if show_progress else {"disable": True})))
        lengths = torch.tensor([f.shape[1] for f in features], dtype=torch.long)
        stacked = torch.cat(features, dim=1) if features else torch.zeros(N_MELS, 0)
        save_file({"features": stacked.half().contiguous(), "lengths": lengths}, str(folder / "spectrograms.safetensors"))

    stored = load_file(str(cached_dir("drawing-speech", key, build) / "spectrograms.safetensors"))
    return list(stored["features"].float().split(stored["lengths"].tolist(), dim=1))
