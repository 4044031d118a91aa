"""`say text`: text to speech with espeak-ng, rendered once into a cache of 8 kHz WAVs.

Theory of operation.  A text is rendered exactly as sounds/generate.sh renders the prompts
(espeak-ng at 150 words a minute, then sox: leading and trailing silence trimmed, a short pad,
8 kHz mono signed 16-bit, normalised to -3 dBFS, no dither), so a spoken text sounds like the
recorded prompts around it.  The WAV is cached under `<dir>/<sha256>.wav`, the hash taken over
(text, language, voice), so a CRM that sends the same message a thousand times renders it once;
concurrent calls asking for the same text wait for one render (a lock per hash), and a file
appears in the cache only complete (written beside it, then renamed).

Caller- and CRM-controlled text never reaches a shell: espeak-ng and sox are exec'd with an
argument vector (asyncio.create_subprocess_exec), the text goes to espeak-ng on stdin
(`--stdin`), so a text starting with "-" is not an option either, and its length is capped
(MAX_TEXT).  A render that takes longer than `timeout` is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

from pbxcore.media.sounds import SoundError

MAX_TEXT = 500  # characters: a notice, not an audiobook
#: The call's language → espeak-ng voice (the ones sounds/generate.sh uses for the prompts).
VOICES = {"en": "en-us", "ru": "ru"}
VOICE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*(?:\+[a-z0-9]{1,12})?$")
# sox effects of sounds/generate.sh's speak(), with the sentence pad (0.3 s).
_SOX_FORMAT = ("-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer")
_SOX_EFFECTS = ("silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%",
                "reverse", "pad", "0.02", "0.3", "gain", "-3", "rate", "8000", "norm", "-3")


class TtsError(SoundError):
    """The text cannot be spoken (too long, bad voice, the engine failed)."""


def voice_for(language: str, voice: str | None) -> str:
    chosen = voice or VOICES.get(language, language)
    if not VOICE.match(chosen):
        raise TtsError(f"say text: voice {chosen!r} is not an espeak-ng voice name")
    return chosen


def cache_key(text: str, language: str, voice: str) -> str:
    return hashlib.sha256(json.dumps([text, language, voice]).encode()).hexdigest()


class Tts:
    """The renderer and its cache directory."""

    def __init__(self, cache_dir: Path, *, espeak: str = "espeak-ng", sox: str = "sox",
                 timeout: float = 30.0) -> None:
        self.cache_dir = cache_dir
        self.espeak, self.sox, self.timeout = espeak, sox, timeout
        self.renders = 0  # texts rendered (not served from the cache), for tests and stats
        self._locks: dict[str, asyncio.Lock] = {}

    def cached(self, text: str, language: str, voice: str | None = None) -> Path | None:
        path = self._path(text, language, voice_for(language, voice))
        return path if path.is_file() else None

    def _path(self, text: str, language: str, voice: str) -> Path:
        return self.cache_dir / f"{cache_key(text, language, voice)}.wav"

    async def render(self, text: str, language: str, voice: str | None = None) -> Path:
        """The cached WAV of `text`, rendering it first if needed."""
        if not text.strip():
            raise TtsError("say text: nothing to say")
        if len(text) > MAX_TEXT:
            raise TtsError(f"say text: {len(text)} characters, at most {MAX_TEXT}")
        chosen = voice_for(language, voice)
        path = self._path(text, language, chosen)
        key = path.stem
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if path.is_file():
                    return path
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                await self._render(text, chosen, path)
                self.renders += 1
                return path
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]

    async def _render(self, text: str, voice: str, path: Path) -> None:
        raw = path.with_name(f".{path.stem}.{os.getpid()}.raw.wav")
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.wav")
        try:
            await self._run([self.espeak, "-v", voice, "-s", "150", "-w", str(raw), "--stdin"],
                            text.encode("utf-8", errors="replace"))
            await self._run([self.sox, "-D", "-R", str(raw), *_SOX_FORMAT, str(tmp),
                             *_SOX_EFFECTS], b"")
            os.replace(tmp, path)  # only a complete file is ever in the cache
        finally:
            for leftover in (raw, tmp):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    async def _run(self, argv: list[str], stdin: bytes) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise TtsError(f"say text: cannot run {argv[0]}: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout):
                _, err = await proc.communicate(stdin)
        except BaseException:  # timeout, or the call ended: the render must not outlive it
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise TtsError(f"say text: {argv[0]} exited {proc.returncode}: "
                           f"{err.decode(errors='replace').strip()[:200]}")
