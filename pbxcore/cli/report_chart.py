"""`pbx report --chart FILE.png`: the three charts a supervisor looks at, with matplotlib's Agg
backend (no display needed; imported only here, lazily).

1. load by hour of day (UTC): calls, queued calls offered and answered, summed over the period;
2. service level per day against the queues' target line (SL or SL2, as --sl says);
3. abandon rate per day (abandoned / offered), short abandons apart.
"""

from __future__ import annotations

from pathlib import Path

from pbxcore.cli.common import utc_text
from pbxcore.report.figures import load_by_hour_of_day, report
from pbxcore.report.model import Dataset, Period

SIZE = (10.0, 10.0)  # inches
DPI = 100  # -> 1000 x 1000 pixels


def write_chart(path: Path, data: Dataset, p: Period, *, sl: str, short_abandon: float) -> None:
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: never try a display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    days = report(data, "day", short_abandon=short_abandon).rows
    hours = load_by_hour_of_day(data)
    fig, (load, level, aband) = plt.subplots(3, 1, figsize=SIZE, dpi=DPI)
    try:
        fig.suptitle(f"pbx report {utc_text(p.since)} to {utc_text(p.until)} UTC")
        x = [h for h, *_ in hours]
        load.bar([h - 0.27 for h in x], [c for _, c, _, _ in hours], width=0.27, label="calls")
        load.bar(x, [o for _, _, o, _ in hours], width=0.27, label="queued")
        load.bar([h + 0.27 for h in x], [a for _, _, _, a in hours], width=0.27,
                 label="answered in queue")
        load.set_title("Load by hour of day (UTC)")
        load.set_xticks(range(0, 24))
        load.set_xlim(-0.6, 23.6)
        load.set_ylabel("calls")
        load.yaxis.set_major_locator(MaxNLocator(integer=True))
        load.legend(loc="upper left", fontsize="small")

        labels = [d.key for d in days]
        values = [(d.sl if sl == "perf" else d.sl2) for d in days]
        bars = level.bar(labels, [100 * v if v is not None else 0.0 for v in values],
                         width=0.5, color="tab:green", label="SL" if sl == "perf" else "SL2")
        level.bar_label(bars, labels=[f"{100 * v:.0f}%" if v is not None else "no calls"
                                      for v in values], fontsize="small")
        targets = sorted(set(data.service_level.values())) or [data.default_service_level]
        level.set_title("Service level per day (answered within "
                        f"{'/'.join(f'{t:g}' for t in targets)} s, "
                        f"{'of answered' if sl == 'perf' else 'of answered + abandoned'})")
        level.set_ylim(0, 110)
        level.set_ylabel("%")
        level.axhline(80, color="grey", linestyle="--", linewidth=1, label="80% (a common target)")
        level.legend(loc="lower left", fontsize="small")

        rates = [100 * d.abandon_rate if d.abandon_rate is not None else 0.0 for d in days]
        short = [100 * d.short_abandoned / d.offered if d.offered else 0.0 for d in days]
        bars = aband.bar(labels, rates, width=0.5, label="abandoned", color="tab:red")
        aband.bar_label(bars, labels=[f"{r:.0f}%" for r in rates], fontsize="small")
        aband.bar(labels, short, width=0.5, label=f"of which short (<= {short_abandon:g} s)",
                  color="tab:orange")
        aband.set_ylim(0, max([*rates, 10.0]) * 1.3)
        aband.set_title("Abandon rate per day (abandoned / offered)")
        aband.set_ylabel("%")
        aband.legend(loc="upper right", fontsize="small")
        for ax in (level, aband):
            ax.tick_params(axis="x", labelrotation=30 if len(labels) > 7 else 0)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
