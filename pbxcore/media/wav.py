"""WAV prompts and recordings: 8 kHz, mono, signed 16-bit PCM only.

Anything else is refused with a message that says what the file is and how to convert
it, because a prompt at the wrong rate plays as chipmunks or noise (docs/peers.md 4). µ-law
WAVs (format 7) are refused too: the stdlib `wave` module cannot read them.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

RATE = 8000
_FIX = "prompts must be 8000 Hz mono 16-bit PCM"


class WavFormatError(ValueError):
    """The file is not an 8 kHz mono 16-bit PCM WAV."""


def _describe(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}-channel")


def read_wav(path: str | os.PathLike[str]) -> bytes:
    """The file's samples as signed 16-bit little-endian PCM (OSError if unreadable)."""
    name = os.fspath(path)
    hint = f"(convert: sox {name} -r 8000 -c 1 -b 16 -e signed-integer OUT.wav)"
    try:
        with wave.open(name, "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            if (rate, channels, width) != (RATE, 1, 2):
                raise WavFormatError(
                    f"{name}: {rate} Hz {_describe(channels)} {8 * width}-bit; {_FIX} {hint}"
                )
            return w.readframes(w.getnframes())
    except wave.Error as e:  # not RIFF/WAVE, or a non-PCM format such as µ-law (7)
        raise WavFormatError(f"{name}: not a PCM WAV file ({e}); {_FIX} {hint}") from None
    except EOFError:
        raise WavFormatError(f"{name}: truncated WAV header; {_FIX} {hint}") from None


def write_wav(path: str | os.PathLike[str], pcm16le: bytes, *, channels: int = 1) -> None:
    """Write 8 kHz 16-bit PCM (mono unless `channels`, interleaved); written to a temporary
    name, then renamed into place so a reader never sees half a recording."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm16le)
    os.replace(tmp, target)


def check_wav(path: str | os.PathLike[str]) -> str | None:
    """None if the file is a usable prompt, else the reason (for `pbx check`)."""
    try:
        read_wav(path)
    except WavFormatError as e:
        return str(e)
    except OSError as e:
        return f"{os.fspath(path)}: {e.strerror or e}"
    return None
