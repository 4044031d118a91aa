"""Tables that fit the terminal by showing fewer columns, never by squeezing them.

rich shrinks every column of a table wider than the terminal, down to one character each; a
table of figures is unreadable then.  Here each column has a priority and the width it needs
(its widest cell, or ``fold`` characters for a column that may wrap); the least important
columns are left out until the table fits, and the caller says which ones were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.table import Table
from rich.text import Text

from pbxcore.script.sanitize import printable


@dataclass(frozen=True)
class Column:
    name: str
    priority: int  # 0 = always shown; higher numbers are left out first
    justify: Literal["left", "right"] = "left"
    fold: int | None = None  # may wrap, down to this many characters


def _needed(col: Column, cells: Sequence[str]) -> int:
    widest = max([len(col.name), *(len(c) for c in cells)])
    return widest if col.fold is None else min(widest, max(col.fold, len(col.name)))


def fitted(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, *,
           title: str | None = None, footer: Sequence[str] | None = None
           ) -> tuple[Table, list[str]]:
    """A table of ``rows`` (and a ``footer`` row, e.g. totals) within ``width`` characters, and
    the names of the columns left out.  Cells are caller-made text: shown literally."""
    every = [*rows, *([footer] if footer is not None else [])]
    needs = [_needed(c, [r[i] for r in every]) for i, c in enumerate(columns)]
    keep = list(range(len(columns)))
    # box.SIMPLE_HEAD: one space of padding each side and a one-character rule between columns
    # (rich's own measure: sum of widths + 3 per column + 1 for the edges).
    while len(keep) > 1 and sum(needs[i] for i in keep) + 3 * len(keep) + 1 > width:
        drop = max(keep, key=lambda i: (columns[i].priority, i))
        if columns[drop].priority == 0:
            break
        keep.remove(drop)
    table = Table(title=title, title_justify="left", box=box.HEAVY_HEAD,
                  show_footer=footer is not None)
    for i in keep:
        c = columns[i]
        table.add_column(c.name, justify=c.justify, min_width=needs[i],
                         no_wrap=c.fold is None, overflow="fold",
                         footer=Text(printable(footer[i])) if footer is not None else "")
    for r in rows:
        table.add_row(*(Text(printable(r[i])) for i in keep))
    return table, [columns[i].name for i in range(len(columns)) if i not in keep]
