"""Listening from the phone: an owner dials the voicemail access code (`[voicemail_access]`,
default `*97`) and hears their box's new messages.

Like the agent feature codes (acd/features.py) the call is authenticated (the digest user is
the owner, so nobody listens to someone else's box), answered by the switch itself (no script;
`Call.flow`) and gets a normal CDR (route `voicemail-access`).  The box is the extension's
own (box = its number) if it owns it, else the first box it owns in file order.  The flow, as Asterisk's VoiceMailMain without the folders:

1. the box's PIN (when it has one and `ask_pin` is on), three tries, then goodbye;
2. "new messages: N" (or "you have no new messages");
3. per message: "message N from <caller's digits> received at HH MM", the message itself (then
   it is *heard*), and the menu: 1 repeat, 7 delete (WAV removed, row *deleted*), 9 next,
   # done; no key within the timeout is next.  Every change reaches the owners' lamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import types
from pathlib import Path
from typing import TYPE_CHECKING

from pbxcore.config import Config, Route
from pbxcore.verbs.say import KEY_NAMES, number_words

if TYPE_CHECKING:
    from pbxcore.call.call import Call
    from pbxcore.config_voicemail import VoicemailBox
    from pbxcore.media.session import MediaSession
    from pbxcore.store.voicemail import VoicemailMessage

KEY_TIMEOUT = 6.0  # seconds to wait for a menu key after the menu prompt
PIN_TRIES = 3


def access_route(config: Config, code: str) -> Route:
    """The route a voicemail access call is handled on: authenticated, no script."""
    language = config.routes[0].language if config.routes else "en"
    return Route(re.compile(re.escape(code)), Path(os.devnull), 1.0, ("hangup",), language,
                 False, types.MappingProxyType({}), False, None, -1, name="voicemail-access")


async def run_menu(call: Call) -> None:
    await call.answer()
    try:
        await _menu(call)
    finally:
        await call.hangup()


async def _menu(call: Call) -> None:
    config = call.deps.config
    boxes = config.voicemail_owned(call.info.user or "")
    if not boxes:
        await _say(call, "vm-no-box")
        return
    # The extension's own box first, else the first company box it owns (file order).
    box = next((b for b in boxes if b.box == call.info.user), boxes[0])
    call.note("note", {"voicemail": box.box, "listening": call.info.user})
    if box.pin and config.voicemail_access.ask_pin and not await _pin(call, box):
        await _say(call, "vm-goodbye")
        return
    store = call.deps.store
    messages = await store.voicemail_messages(box.box, status="new")
    if not messages:
        await _say(call, "vm-no-messages", "vm-goodbye")
        return
    await _say(call, "vm-you-have", *_number(len(messages), call.language))
    index = 0
    while index < len(messages):
        key = await _one(call, box, messages[index], index + 1)
        if key == "1":
            continue
        if key == "7":
            await _delete(call, messages[index])
            await _say(call, "vm-deleted")
        if key == "#":
            break
        index += 1
    await _say(call, "vm-goodbye")


async def _pin(call: Call, box: VoicemailBox) -> bool:
    call.media.flush_digits()  # keys from before the answer are no PIN; later ones are kept
    for _ in range(PIN_TRIES):
        await _say(call, "vm-enter-pin")
        if await _digits(call.media, "#", 16) == box.pin:
            return True
        await _say(call, "vm-wrong-pin")
    call.note("note", {"voicemail": box.box, "note": "wrong PIN"})
    return False


async def _one(call: Call, box: VoicemailBox, m: VoicemailMessage, number: int) -> str | None:
    """Announce and play message `m`, mark it heard, return the menu key (None: timeout)."""
    when = m.time.astimezone()  # the switch's local time: what the owner's clock says
    caller = [f"digits/{KEY_NAMES.get(k, k)}" for k in m.caller if k in "0123456789*#"]
    await _say(call, "vm-message", *_number(number, call.language),
               *(["vm-from", *caller] if caller else []), "vm-received",
               *_number(when.hour, call.language), *_number(when.minute, call.language))
    try:  # keys pressed meanwhile are kept: an owner who knows the menu need not wait for it
        await call.media.play(call.sound(f"recording:{m.recording}"))
    except ValueError as exc:  # the WAV is gone (deleted from the CLI meanwhile)
        call.note("error", {"voicemail": box.box, "message": m.id, "error": str(exc)})
    if m.status == "new":
        await call.deps.store.voicemail_mark(m.id, "heard")
        call.deps.voicemail.changed(m.box)
    await _say(call, "vm-menu")
    return await _key(call.media, KEY_TIMEOUT)


async def _delete(call: Call, m: VoicemailMessage) -> None:
    await call.deps.store.voicemail_mark(m.id, "deleted")
    with contextlib.suppress(OSError):
        (call.deps.config.paths.recordings / m.recording).unlink()
    call.note("note", {"voicemail": m.box, "deleted": m.id})
    call.deps.voicemail.changed(m.box)


def _number(n: int, language: str) -> list[str]:
    return [f"numbers/{w}" for w in number_words(n, language)]


async def _say(call: Call, *names: str) -> None:
    try:
        pcm = b"".join(call.sound(n) for n in names)
    except ValueError as exc:  # a prompt missing in this language: the menu still works
        call.note("error", {"prompt": " ".join(names), "error": str(exc)})
        return
    await call.media.play(pcm)


async def _key(media: MediaSession, timeout: float) -> str | None:
    try:
        key: str = await asyncio.wait_for(media.digits.get(), timeout)
        return key
    except TimeoutError:
        return None


async def _digits(media: MediaSession, finish: str, limit: int) -> str:
    got = ""
    while len(got) < limit:
        key = await _key(media, KEY_TIMEOUT)
        if key is None or key == finish:
            break
        got += key
    return got
