"""Queue announcements (`announcement`): position and estimated wait as prompt names, en and ru."""

from __future__ import annotations

import pytest

from pbxcore.verbs.say import announcement, number_words, plural_form


def test_english_position_and_wait() -> None:
    assert announcement(3, 150, "en", ["position", "wait"]) == [
        "queue-position", "numbers/3", "queue-wait", "numbers/3", "queue-minutes"]
    assert announcement(21, 60, "en", ["position", "wait", "thanks"]) == [
        "queue-position", "numbers/20", "numbers/1", "queue-wait", "numbers/1", "queue-minute",
        "queue-thanks"]


def test_the_next_caller_hears_so() -> None:
    assert announcement(1, None, "en", ["position"]) == ["queue-next"]
    assert announcement(1, 10, "ru", ["position", "wait"]) == [
        "queue-next", "queue-wait", "queue-less-than-minute"]


@pytest.mark.parametrize(("minutes", "words", "noun"), [
    (1, ["1f"], "queue-minute"),             # одна минута
    (2, ["2f"], "queue-minutes-few"),        # две минуты
    (4, ["4"], "queue-minutes-few"),         # четыре минуты
    (5, ["5"], "queue-minutes"),             # пять минут
    (11, ["11"], "queue-minutes"),           # одиннадцать минут
    (12, ["12"], "queue-minutes"),           # двенадцать минут (not "две")
    (21, ["20", "1f"], "queue-minute"),    # двадцать одна минута
    (22, ["20", "2f"], "queue-minutes-few"),  # двадцать две минуты
    (111, ["100", "11"], "queue-minutes"),   # сто одиннадцать минут
])
def test_russian_minutes_take_the_right_form(minutes: int, words: list[str], noun: str) -> None:
    said = announcement(None, minutes * 60, "ru", ["wait"])
    assert said == ["queue-wait", *(f"numbers/{w}" for w in words), noun]


def test_russian_position_is_a_cardinal_number() -> None:
    # "Ваш номер в очереди: два" — masculine cardinal, no ordinal prompts needed.
    assert announcement(2, None, "ru", ["position"]) == ["queue-position", "numbers/2"]
    assert announcement(1001, None, "ru", ["position"]) == [
        "queue-position", "numbers/1f", "numbers/thousand_1", "numbers/1"]


def test_wait_rounds_to_whole_minutes_half_up() -> None:
    assert announcement(None, 29, "en", ["wait"])[-1] == "queue-less-than-minute"
    assert announcement(None, 59, "en", ["wait"])[-1] == "queue-minute"  # rounds to 1
    assert announcement(None, 89, "en", ["wait"])[1:] == ["numbers/1", "queue-minute"]
    assert announcement(None, 90, "en", ["wait"])[1:] == ["numbers/2", "queue-minutes"]


def test_unknown_figures_and_parts() -> None:
    assert announcement(None, None, "en", ["position", "wait"]) == []
    assert announcement(5, 300, "en", []) == []
    assert announcement(5, 300, "en", ["thanks"]) == ["queue-thanks"]
    with pytest.raises(ValueError, match="unknown part 'hold'"):
        announcement(5, 300, "en", ["hold"])


def test_plural_form_and_feminine_numbers() -> None:
    assert [plural_form(n) for n in (0, 1, 2, 5, 11, 14, 21, 23, 25, 101, 111, 1002)] == [
        5, 1, 2, 5, 5, 5, 1, 2, 5, 1, 5, 2]
    assert number_words(2001, "ru", feminine=True) == ["2f", "thousand_2", "1f"]
    assert number_words(2001, "ru") == ["2f", "thousand_2", "1"]
    assert number_words(21, "en", feminine=True) == number_words(21, "en")


def test_a_queue_with_a_callback_key_offers_it_after_the_figures() -> None:
    assert announcement(1, None, "en", ["position"], callback_key="*") == [
        "queue-next", "queue-callback-offer", "digits/star"]
    assert announcement(None, None, "ru", [], callback_key="5") == [
        "queue-callback-offer", "digits/5"]
