"""The conference mixer (pbxcore.rtp.mix): each party hears the sum of the others, never itself;
sums clip instead of wrapping; listeners share one frame."""

from __future__ import annotations

from pbxcore.rtp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from pbxcore.rtp.mix import FRAME, SILENCE, Mixer, decode, encode


def frame(value: int) -> list[int]:
    return [value] * FRAME


def test_each_party_hears_the_others_not_itself() -> None:
    a, b, c = frame(100), frame(20), frame(3)
    total, heard = Mixer().mix([a, b, c, None])
    assert list(total) == frame(123)
    assert [list(h)[0] for h in heard] == [23, 103, 120, 123]
    assert heard[3] is total  # a listener gets the shared total


def test_one_talker_hears_silence_and_everybody_else_hears_it() -> None:
    a = frame(500)
    total, heard = Mixer().mix([None, a, None])
    assert heard[1] is SILENCE
    assert heard[0] is total and heard[2] is total and list(total) == a


def test_nobody_talking_is_silence_and_a_tone_reaches_everybody() -> None:
    total, heard = Mixer().mix([None, None])
    assert total is SILENCE and all(h is SILENCE for h in heard)
    chime = frame(7)
    total, heard = Mixer().mix([frame(1), None], chime)
    assert [list(h)[0] for h in heard] == [7, 8]  # the speaker hears the chime, not itself


def test_encode_clips_instead_of_wrapping() -> None:
    loud = [40000, -40000, 32767, -32768, 0] + [0] * (FRAME - 5)
    clipped = [32767, -32768, 32767, -32768, 0] + [0] * (FRAME - 5)
    pcm = b"".join(s.to_bytes(2, "little", signed=True) for s in clipped)
    assert encode("PCMU", loud) == ulaw_encode(pcm)
    assert encode("PCMA", loud) == alaw_encode(pcm)


def test_decode_matches_the_codec_and_pads_short_frames() -> None:
    payload = bytes(range(FRAME))
    for codec, dec in (("PCMU", ulaw_decode), ("PCMA", alaw_decode)):
        pcm = dec(payload)
        expected = [int.from_bytes(pcm[i:i + 2], "little", signed=True)
                    for i in range(0, len(pcm), 2)]
        assert decode(codec, payload) == expected
    assert decode("PCMU", b"\xff" * 10)[10:] == [0] * (FRAME - 10)
