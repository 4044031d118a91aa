"""docs/architecture.md shows the agent state table and the estimate formula as the code has them."""

from __future__ import annotations

from pathlib import Path

from pbxcore.acd.model import AGENT_EVENTS, TABLE
from pbxcore.acd.model.agents import SETTLE, Illegal
from pbxcore.acd.spec import AGENT_STATES

DOC = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"


def markdown_table() -> str:
    lines = ["| event \\ state | " + " | ".join(AGENT_STATES) + " |",
             "|---" * (len(AGENT_STATES) + 1) + "|"]
    for e in AGENT_EVENTS:
        cells = []
        for s in AGENT_STATES:
            n = TABLE[s, e]  # type: ignore[index]
            cells.append("error" if isinstance(n, Illegal)
                         else "*idle*" if n == SETTLE else "=" if n == s else n)
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_the_docs_show_the_state_table_of_the_code() -> None:
    assert markdown_table() in DOC.read_text(encoding="utf-8")


def test_the_docs_quote_the_estimate_formula() -> None:
    assert "wait(p) = floor((p − 1) / n) · A + r_((p − 1) mod n + 1)" in DOC.read_text(
        encoding="utf-8")
