#!/usr/bin/env python3
"""A notification call of `pbx campaign run` ("автообзвон"): tell the customer their order ships,
ask for a confirmation, hand them to an operator on request.

The campaign list's columns arrive as call variables (PBX_VAR_NAME, PBX_VAR_ORDER); the message is
spoken with `say text`, so no prompt has to be recorded per order.  The answer is the call
variable `result` (confirmed, operator, no_reply), which the campaign writes to its results CSV.
"""

import json
import os
import re

TEXT = {
    "en": {"notice": "Hello {name}. Your order {order} ships tomorrow. Press 1 to confirm, "
                     "or 2 to speak to an operator.",
           "thanks": "Thank you.",
           "operator": "Please hold, an operator will take your call.",
           "inbound": "This number only places notification calls. Goodbye."},
    "ru": {"notice": "Здравствуйте, {name}. Ваш заказ {order} будет отправлен завтра. Нажмите 1, "
                     "чтобы подтвердить, или 2, чтобы поговорить с оператором.",
           "thanks": "Спасибо.",
           "operator": "Пожалуйста, подождите, вам ответит оператор.",
           "inbound": "С этого номера выполняются только уведомления. До свидания."},
}


def clean(value: str, limit: int = 40) -> str:
    """CRM text goes into speech: letters, digits, spaces and a little punctuation only."""
    return re.sub(r"[^\w .'-]", "", value)[:limit].strip()


def say(text: str) -> dict:
    return {"action": "say", "kind": "text", "value": text}


def main() -> None:
    env = os.environ
    event = env["PBX_EVENT"]
    words = TEXT.get(env.get("PBX_LANGUAGE", "en"), TEXT["en"])
    actions: list[dict] = []
    if event == "hangup":
        actions = [{"action": "log", "text": f"notice ended: {env.get('PBX_VAR_RESULT', '')}"}]
    elif env.get("PBX_DIRECTION") != "outbound":
        actions = [say(words["inbound"]), {"action": "hangup"}]
    elif event == "incoming" or (event == "gather" and env.get("PBX_VAR_TRIES") == "1"
                                 and env.get("PBX_DIGITS") not in ("1", "2")):
        tries = "1" if event == "incoming" else "2"
        text = words["notice"].format(name=clean(env.get("PBX_VAR_NAME", "")) or "",
                                      order=clean(env.get("PBX_VAR_ORDER", "")) or "")
        actions = [{"action": "set", "vars": {"tries": tries}}, say(text),
                   {"action": "gather", "max": 1, "timeout": 6}]
    elif event == "gather" and env.get("PBX_DIGITS") == "1":
        actions = [{"action": "set", "vars": {"result": "confirmed"}}, say(words["thanks"]),
                   {"action": "play", "files": ["goodbye"]}, {"action": "hangup"}]
    elif event == "gather" and env.get("PBX_DIGITS") == "2":
        actions = [{"action": "set", "vars": {"result": "operator"}}, say(words["operator"]),
                   {"action": "queue", "name": "support"}]
    else:  # no key twice, or the queue had nobody: the notice was heard, no answer given
        if not env.get("PBX_VAR_RESULT"):
            actions.append({"action": "set", "vars": {"result": "no_reply"}})
        actions.append({"action": "hangup"})
    print(json.dumps(actions, ensure_ascii=False))


main()
