"""The committed prompts in sounds/: format, completeness per language, and the number words.

The word functions below are the naming scheme of sounds/README.md written as code, so the
README's examples are checked here and the engine's `say number` can be compared against them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from pbxcore.config import check_prompts, load_config

ROOT = Path(__file__).resolve().parents[3]
SOUNDS = ROOT / "sounds"
LANGUAGES = ("en", "ru")
# The examples' own prompts, once copied into sounds/ as their READMEs (and `bash .ci/demo`, for
# the call centre) do, live in sounds/<language>/<example>/: not the stock set these tests check.
EXAMPLE_PROMPTS = frozenset(p.name for p in (ROOT / "examples").glob("*/sounds/*/*") if p.is_dir())


def stock_wavs(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*.wav")
                  if not (len(p.relative_to(base).parts) > 2
                          and p.relative_to(base).parts[1] in EXAMPLE_PROMPTS))


ALL_WAVS = stock_wavs(SOUNDS)

# Files every language has: what scripts, fallbacks and the engine itself (beep before record,
# hold music while a script runs, digits for `say digits`) play.
COMMON = ["welcome", "menu", "your-number-is", "record-after-beep", "you-said", "hours",
          "closed", "invalid", "goodbye", "sorry", "moh", "beep",
          *(f"digits/{d}" for d in [*"0123456789", "star", "pound"])]
# What queue announcements play (pbxcore.verbs.say.announcement), and the callback offer.
QUEUE = ["queue-position", "queue-next", "queue-wait", "queue-minute", "queue-minutes-few",
         "queue-minutes", "queue-less-than-minute", "queue-thanks", "queue-callback-offer"]


def words_en(n: int) -> list[str]:
    """File names (under numbers/) that read n aloud in English: 342 -> 3 hundred 40 2."""
    if n < 0:
        return ["minus", *words_en(-n)]
    if n == 0:
        return ["0"]
    for size, scale in SCALES:
        if n >= size:
            high, rest = divmod(n, size)
            return [*_en_below_1000(high), scale, *(words_en(rest) if rest else [])]
    return _en_below_1000(n)


# Scale words, largest first; README: numbers/million.wav, and ru/numbers/million_2.wav etc.
SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand")]


def _en_below_1000(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out = [str(hundreds), "hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        out.append(str(tens * 10))
        rest = ones
    return out + ([str(rest)] if rest else [])


def words_ru(n: int) -> list[str]:
    """File names (under numbers/) that read n aloud in Russian: 2000 -> 2f thousand_2."""
    if n < 0:
        return ["minus", *words_ru(-n)]
    if n == 0:
        return ["0"]
    for size, scale in SCALES:
        if n >= size:
            high, rest = divmod(n, size)
            return [*_ru_below_1000(high, feminine=scale == "thousand"),
                    f"{scale}_{_ru_form(high)}", *(words_ru(rest) if rest else [])]
    return _ru_below_1000(n, feminine=False)


def _ru_form(n: int) -> int:
    """The plural form of тысяча after n: 1 тысяча, 2-4 тысячи, 5+ (and 11-14) тысяч."""
    if 11 <= n % 100 <= 14:
        return 5
    return {1: 1, 2: 2, 3: 2, 4: 2}.get(n % 10, 5)


def _ru_below_1000(n: int, *, feminine: bool) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out = [str(hundreds * 100)] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        out.append(str(tens * 10))
        rest = ones
    if rest:
        # тысяча is feminine: одна тысяча, две тысячи (but одиннадцать, двенадцать тысяч).
        out.append(f"{rest}f" if feminine and rest in (1, 2) else str(rest))
    return out


WORDS = {"en": words_en, "ru": words_ru}


def test_readme_examples() -> None:
    assert words_en(342) == ["3", "hundred", "40", "2"]
    assert words_en(1250) == ["1", "thousand", "2", "hundred", "50"]
    assert words_en(999999) == ["9", "hundred", "90", "9", "thousand", "9", "hundred", "90", "9"]
    assert words_en(-15) == ["minus", "15"]
    assert words_ru(2000) == ["2f", "thousand_2"]
    assert words_ru(1000) == ["1f", "thousand_1"]
    assert words_ru(21512) == ["20", "1f", "thousand_1", "500", "12"]
    assert words_ru(11000) == ["11", "thousand_5"]
    assert words_ru(345678) == ["300", "40", "5", "thousand_5", "600", "70", "8"]
    assert words_ru(2) == ["2"]
    assert words_en(2_000_000_005) == ["2", "billion", "5"]
    assert words_en(999_999_999_999_999)[:3] == ["9", "hundred", "90"]
    assert words_ru(1_002_000) == ["1", "million_1", "2f", "thousand_2"]
    assert words_ru(22_000_000) == ["20", "2", "million_2"]
    assert words_ru(5_000_000_000_000) == ["5", "trillion_5"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_number_words_for_0_to_999999_exist(lang: str) -> None:
    # n = k*1000 + r reads as words(k*1000) + words(r) for r > 0, so these cover 0..999999.
    needed: set[str] = set(WORDS[lang](-1))
    for n in range(1000):
        needed.update(WORDS[lang](n))
        for size, _ in SCALES:  # and every scale word in every form, up to 15 digits
            needed.update(WORDS[lang](n * size))
    missing = sorted(w for w in needed if not (SOUNDS / lang / "numbers" / f"{w}.wav").is_file())
    assert missing == []
    present = {p.stem for p in (SOUNDS / lang / "numbers").glob("*.wav")}
    assert present == needed  # and nothing unused


def test_every_sound_is_8khz_mono_16bit_pcm() -> None:
    assert len(ALL_WAVS) > 100
    for path in ALL_WAVS:
        with wave.open(str(path), "rb") as w:  # stdlib wave reads PCM only: format 1
            shape = (w.getnchannels(), w.getsampwidth(), w.getframerate())
            seconds = w.getnframes() / w.getframerate()
        assert shape == (1, 2, 8000), path
        assert 0.1 < seconds <= 12, path


def test_the_switch_accepts_every_prompt() -> None:
    # The same check `pbx check` runs, with the switch's own WAV reader.
    assert check_prompts(load_config(ROOT / "examples/demo/pbx.toml")) == []


def test_sounds_are_modest_in_size() -> None:
    assert sum(p.stat().st_size for p in ALL_WAVS) < 4_000_000


@pytest.mark.parametrize("lang", LANGUAGES)
def test_common_files_exist(lang: str) -> None:
    missing = [f for f in [*COMMON, *QUEUE] if not (SOUNDS / lang / f"{f}.wav").is_file()]
    assert missing == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_queue_announcement_has_its_prompts(lang: str) -> None:
    from pbxcore.verbs.say import ANNOUNCE_PARTS, announcement

    needed: set[str] = set()
    for position in range(1, 1100):
        needed.update(announcement(position, position * 7.5, lang, ANNOUNCE_PARTS))
    # English never needs the 2-4 form; Russian needs all three.
    unused = {"queue-callback-offer"} | ({"queue-minutes-few"} if lang == "en" else set())
    assert {n for n in needed if not n.startswith("numbers/")} == set(QUEUE) - unused
    missing = sorted(n for n in needed if not (SOUNDS / lang / f"{n}.wav").is_file())
    assert missing == []


def test_demo_config_loads_and_points_at_the_demo() -> None:
    config = load_config(ROOT / "examples/demo/pbx.toml")
    assert config.paths.sounds == SOUNDS
    assert config.paths.scripts == ROOT / "scripts"
    assert config.store_dsn == f"sqlite:///{ROOT / 'var/pbx.db'}"
    assert [(r.match.pattern, r.script.name, r.language) for r in config.routes] == [
        ("^100$", "ivr.py", "en"), ("^101$", "ivr.sh", "en"), ("^102$", "say-number.sh", "en"),
        ("^200$", "ivr.py", "ru"), ("^7101$", "callcentre.py", "en"),
        ("^7102$", "callcentre.py", "en")]
    assert all(r.fallback == ("play sorry", "hangup") and r.timeout == 5 for r in config.routes)
    assert all(os.access(r.script, os.X_OK) for r in config.routes)
    assert [u.extension for u in config.users] == ["1001", "1002", "1003", "1101", "1102", "1103",
                                                   "1201", "1202", "1203", "1204"]
    # The call centre (examples/call-centre): the example's queues, its alert program runnable.
    example = load_config(ROOT / "examples/call-centre/pbx.toml")
    assert [q.name for q in config.queues] == [q.name for q in example.queues] == [
        "operators", "consult-bouquets", "consult-plants", "consult-fiction", "consult-children"]
    assert [q.members for q in config.queues] == [q.members for q in example.queues]
    assert all(q.alert_program is None or os.access(q.alert_program, os.X_OK)
               for q in config.queues)
    assert config.queues[0].alert_program == str(ROOT / "examples/call-centre/alert.py")


def test_generate_sh_reproduces_the_committed_set(tmp_path: Path) -> None:
    # Run the generator on a copy so the repository is untouched; it must produce the same file
    # names with the same lengths (bytes can differ across espeak-ng versions; length barely).
    shutil.copy(SOUNDS / "generate.sh", tmp_path / "generate.sh")
    done = subprocess.run(["bash", str(tmp_path / "generate.sh")], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert re.match(r"generated \d+ files", done.stdout)

    def lengths(base: Path) -> dict[str, float]:
        out = {}
        for path in stock_wavs(base):
            with wave.open(str(path), "rb") as w:
                out[str(path.relative_to(base))] = w.getnframes() / w.getframerate()
        return out

    fresh, committed = lengths(tmp_path), lengths(SOUNDS)
    assert fresh.keys() == committed.keys()
    for name, seconds in committed.items():
        assert abs(fresh[name] - seconds) <= 0.1 * seconds + 0.05, name
