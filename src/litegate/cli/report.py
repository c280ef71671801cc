"""report: cost, escalation, latency and cost per success from the ledger."""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any

import typer

from litegate.cli.common import fail, out, plain_table, settings

COLUMNS = ("feature", "tier", "calls", "tokens in/out", "cost $", "escalated", "p50 ms", "p95 ms",
           "success/fail", "$ per success")


def rows(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    def ms(v: float | None) -> str:
        return f"{v:.0f}" if v is not None else "-"

    return [(str(g["feature"] or "-"), g["tier"], str(g["calls"]), f"{g['tokens_in']}/{g['tokens_out']}",
             f"{g['cost_usd']:.6f}", f"{g['escalation_rate']:.1%}", ms(g["latency_ms_p50"]), ms(g["latency_ms_p95"]),
             f"{g['successes']}/{g['failures']}",
             f"{g['cost_per_success_usd']:.6f}" if g["cost_per_success_usd"] else "-") for g in summary["groups"]]


app = typer.Typer()  # this module's commands; cli/__init__ adds them to the litegate command

@app.command()
def report(since: Annotated[str | None, typer.Option(help="a window such as 24h, 7d or 90m")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
           learning: Annotated[str | None, typer.Option(help="the learning curve of a classifier or "
                                                                "extractor trained with --learn")] = None,
           task: Annotated[str | None, typer.Option(help="with --learning: classify or extract, when the "
                                                            "name is both")] = None) -> None:
    """Cost, escalation, latency and cost per success, by feature and tier, from the ledger;
    or, with --learning NAME, how a learning model improved."""
    from rich.table import Table

    from litegate.ledger.calls import Ledger

    if learning:
        from litegate.cli.learning import learning_report

        learning_report(learning, task, as_json)
        return

    window = None
    if since:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([mhd])", since.strip())
        if not m:
            fail("--since takes a number and m, h or d, such as 24h")
        window = time.time() - float(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)]
    summary = Ledger(settings().ledger_database_url()).summary(window)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    title = (f"litegate ledger: {summary['calls']} calls, ${summary['cost_usd']:.6f}, "
             f"${summary['cost_per_1000_calls_usd']:.4f} per 1,000 calls")
    body = rows(summary)
    table = Table(title=title)
    for col in COLUMNS:
        table.add_column(col, no_wrap=True)
    for r in body:
        table.add_row(*r)
    if out.is_terminal and out.measure(table).maximum <= out.width:
        out.print(table)
    else:  # piped, or too wide for the terminal: a plain table that is never cut
        print(title)
        print(plain_table(COLUMNS, body))
