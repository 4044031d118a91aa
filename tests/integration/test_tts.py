"""media/tts.py with the real espeak-ng and sox: one render per (text, language, voice), an
8 kHz mono WAV with speech in it, concurrent asks rendered once, shell metacharacters and a
leading "-" spoken as text (no shell, text on stdin), the length cap and voice names enforced."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from pbxcore.media.tts import MAX_TEXT, Tts, TtsError
from pbxcore.media.wav import read_wav
from tests.peers.switching_helpers import loud_stats, pcm16


def speech_frames(path: Path) -> int:
    loud, _ = loud_stats(pcm16(read_wav(path)))
    return loud


def test_rendered_once_and_cached(tmp_path: Path) -> None:
    tts = Tts(tmp_path / "tts")

    async def main() -> tuple[Path, Path, list[Path]]:
        first = await tts.render("Your order 4711 ships tomorrow.", "en")
        again = await tts.render("Your order 4711 ships tomorrow.", "en")
        together = await asyncio.gather(*(tts.render("Three at once.", "en") for _ in range(3)))
        return first, again, list(together)

    first, again, together = asyncio.run(main())
    assert first == again and len(set(together)) == 1
    assert tts.renders == 2, tts.renders  # two texts, each rendered once
    with wave.open(str(first)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 8000  # more than a second of speech
    assert speech_frames(first) > 25
    assert sorted(p.name for p in (tmp_path / "tts").iterdir()) == sorted(
        {first.name, together[0].name})  # no temporary files left beside them
    assert tts.cached("Your order 4711 ships tomorrow.", "en") == first
    assert tts.cached("Your order 4711 ships tomorrow.", "ru") is None  # language is in the key


def test_text_is_never_an_option_or_a_shell_word(tmp_path: Path) -> None:
    tts = Tts(tmp_path / "tts")
    marker = tmp_path / "owned"
    text = f"--version; touch {marker} $(touch {marker}) `touch {marker}`"
    path = asyncio.run(tts.render(text, "en"))
    assert speech_frames(path) > 25  # spoken, not taken as espeak-ng's --version
    assert not marker.exists()


def test_russian_and_an_explicit_voice(tmp_path: Path) -> None:
    tts = Tts(tmp_path / "tts")
    ru = asyncio.run(tts.render("Ваш заказ 4711 будет отправлен завтра.", "ru"))
    gb = asyncio.run(tts.render("Hello.", "en", "en-gb"))
    assert speech_frames(ru) > 25 and speech_frames(gb) > 5
    assert ru != asyncio.run(tts.render("Hello.", "en"))  # a different voice, another entry
    assert gb != asyncio.run(tts.render("Hello.", "en"))


def test_limits(tmp_path: Path) -> None:
    tts = Tts(tmp_path / "tts")
    with pytest.raises(TtsError, match="at most"):
        asyncio.run(tts.render("a" * (MAX_TEXT + 1), "en"))
    with pytest.raises(TtsError, match="voice"):
        asyncio.run(tts.render("hello", "en", "-w/etc/passwd"))
    with pytest.raises(TtsError, match="nothing"):
        asyncio.run(tts.render("   ", "en"))
    missing = Tts(tmp_path / "x", espeak=str(tmp_path / "no-such-espeak"))
    with pytest.raises(TtsError, match="cannot run"):
        asyncio.run(missing.render("hello", "en"))
