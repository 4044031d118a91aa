"""Prompt lookup: a script's `play welcome` becomes the PCM of sounds/<language>/welcome.wav.

Names are confined to the sounds directory (and `recording:NAME` to the recordings directory):
a script bug or a hostile variable cannot make the switch read /etc/passwd.  Prompts are decoded
once and cached (a call centre plays the same few prompts all day); recordings are not cached.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from pbxcore.media.wav import read_wav

RECORDING_PREFIX = "recording:"
CACHE_ENTRIES = 512


class SoundError(ValueError):
    """A prompt that cannot be played: missing, outside its directory, or not 8 kHz mono PCM."""


def confined(base: Path, name: str) -> Path:
    """`base/name` resolved, refusing anything that escapes `base` (.., absolute, symlinks out)."""
    if not name or "\x00" in name or name.startswith("/"):
        raise SoundError(f"bad sound name {name!r}")
    root = base.resolve()
    path = (root / name).resolve()
    if root != path and root not in path.parents:
        raise SoundError(f"{name!r} is outside {base}")
    return path


class SoundLibrary:
    """Finds and decodes prompts per language, with an in-memory cache."""

    def __init__(self, sounds_dir: Path, recordings_dir: Path) -> None:
        self.sounds_dir = sounds_dir
        self.recordings_dir = recordings_dir
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def path(self, name: str, language: str) -> Path:
        if name.startswith(RECORDING_PREFIX):
            rel = name[len(RECORDING_PREFIX) :]
            path = confined(self.recordings_dir, rel if rel.endswith(".wav") else rel + ".wav")
            if not path.is_file():
                raise SoundError(f"recording {rel!r} not found")
            return path
        file = name if name.endswith(".wav") else name + ".wav"
        for candidate in (f"{language}/{file}", file):
            path = confined(self.sounds_dir, candidate)
            if path.is_file():
                return path
        raise SoundError(f"sound {name!r} not found in {self.sounds_dir}/{language}")

    def load(self, name: str, language: str) -> bytes:
        """The PCM of a prompt.  Prompts are cached by (name, language), so a `play` of a
        known prompt touches no file system at all (a new SoundLibrary, built on every config
        reload, starts empty); recordings are read each time."""
        if name.startswith(RECORDING_PREFIX):
            return self._read(self.path(name, language))
        key = (name, language)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        pcm = self._read(self.path(name, language))
        self._cache[key] = pcm
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return pcm

    @staticmethod
    def _read(path: Path) -> bytes:
        try:
            return read_wav(path)
        except ValueError as exc:  # WavFormatError: not 8 kHz mono 16-bit
            raise SoundError(str(exc)) from exc
