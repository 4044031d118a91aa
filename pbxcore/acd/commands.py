"""The ACD's control-socket commands: `queues`, `agents`, `agent` (docs/operations.md).

Registered by the server on the switch's ControlServer (they replace the names it reserves as
"no queues configured").  The shapes are the service's `queue_status` / `agent_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pbxcore.acd.api import AgentError, AgentOp
from pbxcore.acd.service import AcdService
from pbxcore.control.protocol import BAD_ARGS, NOT_FOUND, CommandError
from pbxcore.control.server import ControlServer

OPS = ("login", "logout", "pause", "unpause")


def install(control: ControlServer, acd: AcdService) -> None:
    async def queues(args: Mapping[str, Any]) -> dict[str, Any]:
        return {"queues": acd.queue_status()}

    async def agents(args: Mapping[str, Any]) -> dict[str, Any]:
        return {"agents": acd.agent_status()}

    async def agent(args: Mapping[str, Any]) -> dict[str, Any]:
        op, extension = args.get("op"), args.get("extension")
        queue, reason = args.get("queue"), args.get("reason")
        if op not in OPS or not isinstance(extension, str) or not extension:
            raise CommandError(BAD_ARGS, f'agent needs "op" ({"|".join(OPS)}) and "extension"')
        if not all(v is None or isinstance(v, str) for v in (queue, reason)):
            raise CommandError(BAD_ARGS, '"queue" and "reason" are strings')
        if queue is not None and acd.spec(queue) is None:
            raise CommandError(NOT_FOUND, f"no queue {queue!r} in pbx.toml")
        try:
            await acd.agent_control(cast(AgentOp, op), extension, queue=queue, reason=reason,
                                    via="cli")
            return acd.agent_view(extension)
        except (AgentError, ValueError) as exc:
            raise CommandError(NOT_FOUND, str(exc)) from exc

    for name, handler in (("queues", queues), ("agents", agents), ("agent", agent)):
        control.register(name, handler, replace=True)
