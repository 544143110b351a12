"""Spoken captions of notebook 03: wav reading, resampling, the mel filterbank, log-mel features, espeak-ng."""
import wave
from dataclasses import replace

import numpy as np
import pytest
import torch

from tutorlib.drawing import speech
from tutorlib.drawing.speech import (HOP_MS, N_MELS, SAMPLE_RATE, audio_features, espeak_available, hz_to_mel,
                                    log_mel, mel_filterbank, mel_to_hz, read_wav, resample, spoken_captions,
                                    synthesize)
from tutorlib.drawing.word_eval import word_captions
from tutorlib.drawing.words import WordConfig, WordModel

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")


def _write_wav(path, samples: np.ndarray, rate: int, channels: int = 1):
    with wave.open(str(path), "wb") as stream:
        stream.setnchannels(channels)
        stream.setsampwidth(2)
        stream.setframerate(rate)
        stream.writeframes(samples.astype("<i2").tobytes())


def test_read_wav_scales_and_mixes_channels(tmp_path):
    # two channels, interleaved: (16384, 0), (-32768, -16384)
    _write_wav(tmp_path / "a.wav", np.array([16384, 0, -32768, -16384]), 8000, channels=2)
    samples, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and samples.dtype == np.float32
    assert samples.tolist() == pytest.approx([0.25, -0.75])


def test_read_wav_refuses_other_files(tmp_path):
    (tmp_path / "b.wav").write_text("not audio")
    with pytest.raises(ValueError, match="not a PCM wav"):
        read_wav(tmp_path / "b.wav")


def test_resample_keeps_length_in_seconds_and_linear_signals():
    ramp = np.arange(8, dtype=np.float32)  # at 8 Hz -> at 16 Hz: half steps
    assert resample(ramp, 8, 16)[:5].tolist() == pytest.approx([0, 0.5, 1, 1.5, 2])
    assert len(resample(np.zeros(22050), 22050)) == SAMPLE_RATE
    with pytest.raises(ValueError, match="positive"):
        resample(ramp, 0)


def test_mel_scale_round_trip_and_1000_hz():
    assert hz_to_mel(1000) == pytest.approx(1000, abs=0.5)  # the mel scale is anchored near 1000 Hz
    assert mel_to_hz(hz_to_mel([0, 440, 7999])) == pytest.approx([0, 440, 7999])


def test_filterbank_triangles_peak_at_one_and_cover_the_band():
    bank = mel_filterbank(N_MELS, 512)
    assert bank.shape == (N_MELS, 257) and (bank >= 0).all()
    assert bank.max(dim=1).values.min() > 0.5  # every filter sees at least one bin near its peak
    assert (bank.argmax(dim=1).diff() >= 0).all()  # centres rise with the band index


def test_log_mel_frames_and_the_band_of_a_tone():
    seconds = 1.0
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    features = log_mel(np.sin(2 * np.pi * 1000 * t), SAMPLE_RATE)
    n_fft, hop = 512, SAMPLE_RATE * HOP_MS // 1000  # the 400-sample (25 ms) window sits inside 512-sample frames
    assert features.shape == (N_MELS, 1 + (len(t) - n_fft) // hop)
    centres = mel_to_hz(np.linspace(0, hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))[1:-1]
    loudest = int(features.mean(dim=1).argmax())
    assert abs(centres[loudest] - 1000) < 150  # the band centred nearest 1 kHz is the loudest


def test_audio_features_of_a_wav_file_resample_first(tmp_path):
    t = np.arange(22050) / 22050
    _write_wav(tmp_path / "tone.wav", 10000 * np.sin(2 * np.pi * 500 * t), 22050)
    features = audio_features(tmp_path / "tone.wav")
    assert features.shape[0] == N_MELS and features.shape[1] == 1 + (SAMPLE_RATE - 512) // 160


def test_missing_espeak_gives_install_instructions(monkeypatch):
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    assert not espeak_available()
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        synthesize("a red cube")


def test_speech_encoder_masks_by_length():
    config = replace(WordConfig.for_profile("smoke", caption="speech"), dim=8, speech_width=8)
    model = WordModel(config).eval()
    features, mask = model.encode_captions([torch.randn(N_MELS, 80), torch.randn(N_MELS, 20)])
    assert features.shape == (2, 8, 10) and mask.sum(dim=1).tolist() == [10, 2]
    with pytest.raises(ValueError, match="log-mel"):
        model.encode_captions(["a red cube"])


@needs_espeak
def test_synthesized_captions_are_cached_spectrograms(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORLIB_DATA", str(tmp_path))
    waveform, rate = synthesize("a red cube")
    assert rate > 0 and len(waveform) > rate // 4 and np.abs(waveform).max() > 0.01
    first = spoken_captions(["a red cube", "two large blue spheres and a small cylinder"], show_progress=False)
    assert [f.shape[0] for f in first] == [N_MELS, N_MELS] and first[1].shape[1] > first[0].shape[1]
    monkeypatch.setattr(speech, "espeak_available", lambda: False)  # a cached set needs no synthesis
    again = spoken_captions(["a red cube", "two large blue spheres and a small cylinder"], show_progress=False)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    with pytest.raises(RuntimeError, match="espeak-ng is not installed"):
        spoken_captions(["a green ball"], show_progress=False)


@needs_espeak
def test_word_captions_are_spoken_for_speech_and_plain_for_text(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORLIB_DATA", str(tmp_path))
    assert word_captions("text", ["red", "cube"]) == {"red": "red", "cube": "cube"}
    spoken = word_captions("speech", ["red"])
    assert list(spoken) == ["red"] and spoken["red"].shape[0] == N_MELS
