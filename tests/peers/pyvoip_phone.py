"""A pyVoIP 1.6.8 desk phone that registers, calls one number and reports what happened, as JSON.

Run as a subprocess (pyVoIP's threads are not daemons, so a forgotten phone would keep pytest
alive; docs/peers.md 1c):  python pyvoip_phone.py PLAN.json RESULT.json
PLAN: server_port, user, password, sip_port, rtp_low, rtp_high, number, tone_seconds,
dtmf (digits, sent as RFC 2833 through the call's own RTP socket, docs/peers.md 1b), dtmf_at (seconds
after the answer), max_call (seconds before the phone hangs up itself).
RESULT: registered, answered, ended_by_remote, frames (20 ms frames read), loud_frames,
rms8 (of the received audio, 8-bit scale), dtmf_sent, error.
The process always ends with os._exit so a wedged pyVoIP thread cannot keep it alive.
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
from typing import Any


def send_rfc2833(call: Any, digits: str, pt: int = 101, ms: int = 160) -> None:
    """RFC 4733 events from the call's own RTP socket (same source port as its audio)."""
    rtp = call.RTPClients[0]
    ssrc, seq, ts = random.getrandbits(32), random.randint(0, 30000), random.getrandbits(31)
    steps = ms // 20
    for d in digits:
        ev = "0123456789*#ABCD".index(d.upper())
        for k in range(steps + 2):  # the last 3 packets carry the E bit
            end = k >= steps - 1
            dur = min(k + 1, steps) * 160
            hdr = struct.pack("!BBHII", 0x80, (0x80 if k == 0 else 0) | pt, seq & 0xFFFF, ts, ssrc)
            rtp.sout.sendto(hdr + struct.pack("!BBH", ev, (0x80 if end else 0) | 10, dur),
                            (rtp.outIP, rtp.outPort))
            seq += 1
            time.sleep(0.02)
        ts = (ts + (steps + 5) * 160) & 0xFFFFFFFF
        time.sleep(0.1)


def tone_8bit(seconds: float, freq: float = 1000.0, amplitude: int = 6000) -> bytes:
    """pyVoIP's audio is 8-bit unsigned linear at 8 kHz (0x80 = silence)."""
    n = int(seconds * 8000)
    return bytes(128 + int(amplitude * math.sin(2 * math.pi * freq * i / 8000)) // 256
                 for i in range(n))


def main(plan: dict[str, Any], result: dict[str, Any]) -> None:
    import pyVoIP.VoIP as voip  # first pyVoIP import must be pyVoIP.VoIP (docs/peers.md 1)

    phone = voip.VoIPPhone(
        "127.0.0.1", plan["server_port"], plan["user"], plan["password"],
        myIP="127.0.0.1", callCallback=None, sipPort=plan["sip_port"],
        rtpPortLow=plan["rtp_low"], rtpPortHigh=plan["rtp_high"],
    )
    phone.sip.register_timeout = 3
    phone.start()
    try:
        result["registered"] = phone.get_status() == voip.PhoneStatus.REGISTERED
        if not result["registered"]:
            return
        # pyVoIP's "SIP Recieve" thread starts 1 s after start(): a 200 OK that arrives earlier is
        # handled late and the start of the prompt goes to a port nobody has bound yet (docs/peers.md 1c).
        time.sleep(1.2)
        # call() returns after 100/180 (the switch sends 100 at once) or after the 401 retry.
        holder: dict[str, Any] = {}
        dialler = threading.Thread(target=lambda: holder.update(call=phone.call(plan["number"])),
                                   daemon=True)
        dialler.start()
        dialler.join(10)
        call = holder.get("call")
        if call is None:
            result["error"] = "phone.call() did not return within 10 s"
            return
        deadline = time.monotonic() + 10
        while call.state != voip.CallState.ANSWERED and time.monotonic() < deadline:
            if call.state == voip.CallState.ENDED:
                break
            time.sleep(0.02)
        result["answered"] = call.state == voip.CallState.ANSWERED
        if not result["answered"]:
            result["error"] = f"call state {call.state}"
            return
        answered = time.monotonic()
        call.write_audio(tone_8bit(plan["tone_seconds"]))
        frames = loud = 0
        energy = 0
        sent = False
        while time.monotonic() - answered < plan["max_call"]:
            if call.state != voip.CallState.ANSWERED:
                result["ended_by_remote"] = True
                break
            if not sent and plan.get("dtmf") and time.monotonic() - answered >= plan["dtmf_at"]:
                send_rfc2833(call, plan["dtmf"])
                sent = result["dtmf_sent"] = True
            # Read every 20 ms frame that is due by the wall clock, so the reader never falls
            # behind pyVoIP's timestamp-indexed buffer.
            while frames < (time.monotonic() - answered) / 0.02:
                frame = call.read_audio(160, blocking=False)
                frames += 1
                square = sum((b - 128) ** 2 for b in frame)
                energy += square
                if math.sqrt(square / max(1, len(frame))) > 2:
                    loud += 1
            time.sleep(0.02)
        else:
            call.hangup()
        result.update(frames=frames, loud_frames=loud,
                      rms8=math.sqrt(energy / max(1, frames * 160)))
    finally:
        phone.stop()


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        PLAN = json.load(f)
    RESULT: dict[str, Any] = {"registered": False, "answered": False, "ended_by_remote": False,
                              "dtmf_sent": False, "frames": 0, "loud_frames": 0, "rms8": 0.0,
                              "error": None}
    code = 0
    try:
        main(PLAN, RESULT)
    except BaseException:  # noqa: BLE001 - reported to the test, then a hard exit
        RESULT["error"] = traceback.format_exc()
        code = 1
    with open(sys.argv[2], "w") as f:
        json.dump(RESULT, f)
    sys.stdout.flush()
    os._exit(code)
