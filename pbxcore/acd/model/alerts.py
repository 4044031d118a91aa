"""Supervisor alerts with hysteresis (spec.AlertThresholds): once per crossing.

A figure raises its alert when it reaches the threshold and clears it when it falls below
``threshold * clear_ratio``; in between nothing is sent, so a queue hovering at the threshold
pages nobody twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pbxcore.acd.model.decisions import Alert, AlertFigure
from pbxcore.acd.spec import AlertThresholds


@dataclass
class AlertState:
    """Which figures of one queue are raised now."""

    raised: set[AlertFigure] = field(default_factory=set)

    def evaluate(self, queue: str, th: AlertThresholds, waiting: int,
                 longest_wait: float) -> list[Alert]:
        out: list[Alert] = []
        figures: tuple[tuple[AlertFigure, float | None, float], ...] = (
            ("waiting", th.waiting, float(waiting)), ("longest_wait", th.longest_wait, longest_wait))
        for figure, threshold, value in figures:
            up = figure in self.raised
            if threshold is None:
                self.raised.discard(figure)  # the threshold was removed by a reload
            elif not up and value >= threshold:
                self.raised.add(figure)
                out.append(Alert(queue, figure, value, float(threshold), True))
            elif up and value < threshold * th.clear_ratio:
                self.raised.discard(figure)
                out.append(Alert(queue, figure, value, float(threshold), False))
        return out
