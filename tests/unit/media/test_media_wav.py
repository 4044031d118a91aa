"""WAV prompts: 8 kHz mono s16 accepted, anything else refused with a fix-it message."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import pytest

from pbxcore.media.wav import WavFormatError, check_wav, read_wav, write_wav


def make_wav(path: Path, rate: int, channels: int, width: int, frames: int = 80) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(frames * channels * width))
    return path


def test_round_trip(tmp_path: Path) -> None:
    pcm = struct.pack("<4h", 0, 32767, -32768, 5)
    write_wav(tmp_path / "x.wav", pcm)
    assert read_wav(tmp_path / "x.wav") == pcm
    assert check_wav(tmp_path / "x.wav") is None
    assert not list(tmp_path.glob(".*.part"))
    with wave.open(str(tmp_path / "x.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)


@pytest.mark.parametrize(
    ("rate", "channels", "width", "described"),
    [
        (22050, 2, 2, "22050 Hz stereo 16-bit"),
        (22050, 1, 2, "22050 Hz mono 16-bit"),
        (8000, 1, 1, "8000 Hz mono 8-bit"),
        (8000, 2, 2, "8000 Hz stereo 16-bit"),
        (16000, 3, 2, "16000 Hz 3-channel 16-bit"),
    ],
)
def test_wrong_format_refused(
    tmp_path: Path, rate: int, channels: int, width: int, described: str
) -> None:
    path = make_wav(tmp_path / "x.wav", rate, channels, width)
    expected = (
        f"{path}: {described}; prompts must be 8000 Hz mono 16-bit PCM "
        f"(convert: sox {path} -r 8000 -c 1 -b 16 -e signed-integer OUT.wav)"
    )
    with pytest.raises(WavFormatError) as info:
        read_wav(path)
    assert str(info.value) == expected
    assert check_wav(path) == expected


def test_ulaw_wav_refused(tmp_path: Path) -> None:
    # What `sox in.wav -e mu-law out.wav` writes: WAVE_FORMAT_MULAW (7).
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    data = b"\xff" * 16
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    path = tmp_path / "ulaw.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    msg = check_wav(path)
    assert msg is not None and msg.startswith(f"{path}: not a PCM WAV file")
    assert "8000 Hz mono 16-bit PCM" in msg


def test_not_a_wav_and_truncated(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"hello world, not a wav")
    (tmp_path / "b.wav").write_bytes(b"RIFF")
    assert "not a PCM WAV file" in (check_wav(tmp_path / "a.wav") or "")
    assert check_wav(tmp_path / "b.wav") is not None
    with pytest.raises(WavFormatError):
        read_wav(tmp_path / "b.wav")


def test_missing_file(tmp_path: Path) -> None:
    assert check_wav(tmp_path / "nope.wav") == f"{tmp_path / 'nope.wav'}: No such file or directory"
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "nope.wav")
