"""The child process of `pbx phone`: one pyVoIP 1.6.8 phone that registers, then calls a
number (mode "call") or waits for a call and answers it (mode "answer"), sends digits, keeps
what it heard, and writes a JSON result.  Run as `python -m pbxcore.phone.session` with the
plan on stdin (pbxcore.phone.runner does); it always ends with os._exit, also from a watchdog
at the plan's deadline, because pyVoIP's threads are not daemons (docs/peers.md §1c).

pyVoIP's quirks this works around (docs/peers.md §1): the first pyVoIP import must be
pyVoIP.VoIP; its SIP receive thread starts 1 s after start(), so nothing is sent before that;
phone.call() returns only after a provisional response, so it runs in a thread with a bound;
audio is 8-bit unsigned linear at 8 kHz (0x80 silence); it cannot send DTMF, so RFC 4733 events
go out through the call's own RTP socket.
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
import sys
import threading
import time
import traceback
import warnings
import wave
from typing import Any

FRAME = 160  # bytes of 8-bit audio per 20 ms
LOUD_RMS8 = 2.0  # a frame above this (8-bit scale, silence 0) is sound, not line noise
AUDIO_FRAMES = 10  # 200 ms of sound is "audio heard"


def send_rfc4733(call: Any, digits: str, pt: int = 101, ms: int = 160) -> None:
    """RFC 4733 §2.5 events from the call's own RTP socket (same source port as its audio):
    a first packet with the marker bit, updates every 20 ms, three end packets."""
    rtp = call.RTPClients[0]
    ssrc, seq, ts = random.getrandbits(32), random.randint(0, 30000), random.getrandbits(31)
    steps = ms // 20
    for d in digits:
        ev = "0123456789*#ABCD".index(d.upper())
        for k in range(steps + 2):
            end = k >= steps - 1
            dur = min(k + 1, steps) * 160
            hdr = struct.pack("!BBHII", 0x80, (0x80 if k == 0 else 0) | pt, seq & 0xFFFF, ts,
                              ssrc)
            rtp.sout.sendto(hdr + struct.pack("!BBH", ev, (0x80 if end else 0) | 10, dur),
                            (rtp.outIP, rtp.outPort))
            seq += 1
            time.sleep(0.02)
        ts = (ts + (steps + 5) * 160) & 0xFFFFFFFF
        time.sleep(0.1)


class Session:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.result: dict[str, Any] = {
            "registered": False, "answered": False, "answer_seconds": None,
            "audio_heard": False, "rms8": 0.0, "loud_frames": 0, "frames": 0,
            "call_seconds": None, "ended_by": None, "digits_sent": "", "recorded": None,
            "error": None,
        }
        self.heard = bytearray()
        self.lock = threading.Lock()

    def save(self) -> None:
        with self.lock:
            with open(self.plan["result"], "w") as f:
                json.dump(self.result, f)

    def run(self) -> None:
        warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
        import pyVoIP.VoIP as voip  # must be the first pyVoIP import (docs/peers.md §1)

        self.voip = voip
        plan = self.plan
        answered_event = threading.Event()
        incoming: dict[str, Any] = {}

        def on_call(call: Any) -> None:  # pyVoIP's "Phone Call" thread, ~1 s after INVITE
            if incoming:
                call.deny()
                return
            incoming["call"] = call
            call.answer()
            answered_event.set()
            # Returning ends pyVoIP's interest in the call: wait while the main thread talks.
            while call.state == voip.CallState.ANSWERED and not incoming.get("done"):
                time.sleep(0.05)

        phone = voip.VoIPPhone(
            plan["server_host"], plan["server_port"], plan["user"], plan["password"],
            myIP=plan["local_ip"], callCallback=on_call if plan["mode"] == "answer" else None,
            sipPort=plan["sip_port"], rtpPortLow=plan["rtp_low"], rtpPortHigh=plan["rtp_high"])
        phone.sip.register_timeout = 3
        try:
            phone.start()
        except Exception as exc:  # wrong password, nobody answering: not registered
            self.result["error"] = f"{type(exc).__name__}: {exc}"
            return
        if phone.get_status() != voip.PhoneStatus.REGISTERED:
            self.result["error"] = ("REGISTER refused or unanswered: wrong user or password, "
                                    "or no switch at that address")
            return
        self.result["registered"] = True
        self.save()
        time.sleep(1.2)  # pyVoIP's receive thread starts 1 s after start()
        started = time.monotonic()
        if plan["mode"] == "call":
            call = self._dial(phone, started)
        else:
            got = answered_event.wait(plan["wait"] if plan["wait"] > 0 else None)
            call = incoming.get("call") if got else None
            if call is None:
                self.result["error"] = f"no call came in {plan['wait']:g} s"
        if call is not None:
            self.result["answered"] = True
            self.result["answer_seconds"] = round(time.monotonic() - started, 2)
            self.save()
            self._talk(call)
        incoming["done"] = True
        try:
            phone.stop()
        except Exception:
            pass

    def _dial(self, phone: Any, started: float) -> Any:
        voip, plan = self.voip, self.plan
        holder: dict[str, Any] = {}

        def dial() -> None:
            try:
                holder["call"] = phone.call(plan["number"])
            except Exception as exc:  # pyVoIP raises on some final responses (404: KeyError)
                holder["error"] = f"{type(exc).__name__}: {exc}"

        dialler = threading.Thread(target=dial, daemon=True)
        dialler.start()
        dialler.join(plan["wait"])
        call = holder.get("call")
        if call is None:
            self.result["error"] = holder.get("error") or "no answer to the INVITE"
            return None
        deadline = started + plan["wait"]
        while call.state != voip.CallState.ANSWERED and time.monotonic() < deadline:
            if call.state == voip.CallState.ENDED:
                break
            time.sleep(0.02)
        if call.state != voip.CallState.ANSWERED:
            self.result["error"] = ("rejected" if call.state == voip.CallState.ENDED
                                    else f"not answered within {plan['wait']:g} s")
            return None
        return call

    def _talk(self, call: Any) -> None:
        voip, plan = self.voip, self.plan
        answered = time.monotonic()
        frames = loud = 0
        energy = 0
        sent = False
        ended_by = "phone"
        while time.monotonic() - answered < plan["listen"]:
            if call.state != voip.CallState.ANSWERED:
                ended_by = "remote"
                break
            if not sent and plan["digits"] and time.monotonic() - answered >= plan["digits_at"]:
                send_rfc4733(call, plan["digits"])
                sent = True
                self.result["digits_sent"] = plan["digits"]
            # Read every 20 ms frame that is due by the wall clock: the reader never falls
            # behind pyVoIP's timestamp-indexed buffer.
            while frames < (time.monotonic() - answered) / 0.02:
                frame = call.read_audio(FRAME, blocking=False)
                frames += 1
                square = sum((b - 128) ** 2 for b in frame)
                energy += square
                if math.sqrt(square / max(1, len(frame))) > LOUD_RMS8:
                    loud += 1
                self.heard += frame
            time.sleep(0.02)
        if ended_by == "phone":
            try:
                call.hangup()
            except Exception:
                pass
        rms8 = math.sqrt(energy / max(1, frames * FRAME))
        self.result.update(frames=frames, loud_frames=loud, rms8=round(rms8, 2),
                           audio_heard=loud >= AUDIO_FRAMES, ended_by=ended_by,
                           call_seconds=round(time.monotonic() - answered, 2))
        if plan.get("record"):
            self._record(plan["record"])

    def _record(self, path: str) -> None:
        # 8-bit unsigned to 16-bit signed little-endian, 8 kHz mono: what every tool reads.
        pcm = b"".join(struct.pack("<h", (b - 128) << 8) for b in self.heard)
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(pcm)
        self.result["recorded"] = path


def main() -> None:
    plan = json.loads(sys.stdin.read())
    session = Session(plan)

    def watchdog() -> None:
        session.result["error"] = session.result["error"] or "deadline reached"
        session.save()
        os._exit(1)

    timer = threading.Timer(float(plan["deadline"]), watchdog)
    timer.daemon = True
    timer.start()
    code = 0
    try:
        session.run()
    except BaseException:  # reported in the result, then a hard exit
        session.result["error"] = traceback.format_exc().strip().splitlines()[-1]
        code = 1
    session.save()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
