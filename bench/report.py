"""The bench's one table (stdout and bench.md), its JSON, and its picture (bench.png, matplotlib Agg)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Line:
    """One row of the table."""

    row: str
    measure: str
    result: str
    beside: str
    ratio: str
    goal: str
    met: bool | None  # None: no goal
    note: str = ""


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def _x(value: float) -> str:
    return f"{value:,.0f}x" if value >= 100 else f"{value:.1f}x"


_TITLES = {
    "active_sessions": "Active sessions",
    "request_cost": "Request cost",
    "side_by_side": "Side by side (wrk)",
    "billing": "Billing sweep",
    "coldstart": "Cold start",
    "token_verify": "Token verification",
    "realtime": "Realtime: tip -> websocket (soketi)",
    "webhook": "Stripe webhook -> credit committed",
}


def lines(rows: dict[str, Any]) -> list[Line]:
    """The table, row by row, from the raw figures (a row that failed is a line saying why)."""
    failed = {name: r for name, r in rows.items() if isinstance(r, dict) and "error" in r}
    rows = {name: r for name, r in rows.items() if name not in failed}
    out: list[Line] = [
        Line(_TITLES.get(name, name), "-", "FAILED", "-", "-", "-", False, r["error"][:600])
        for name, r in failed.items()
    ]
    if (s := rows.get("active_sessions")) is not None:
        plain = s["plain_count"]["median_ms"]
        for key, label in (("redis", "Redis"), ("database", "Redis down: partial index")):
            r = s[key]
            ratio = plain / max(r["p50_ms"], 1e-9)
            met = r["p99_ms"] < 5 and ratio > 100 and r["unexpected"] == 0
            note = f"count {r['count']:,} from {r['source']}"
            if key == "redis" and (u := s.get("upstash_scard_roundtrip")):
                note += (
                    f"; one Upstash REST round trip (local gateway) p50 {_ms(u['p50_ms'])}, p99 "
                    f"{_ms(u['p99_ms'])}: this path makes two (rate limit, SCARD)"
                )
            if r["unexpected"]:
                note += f"; {r['unexpected']} non-2xx"
            out.append(
                Line(
                    f"Active sessions ({label}), {s['count']:,} active",
                    f"GET /stats/active-sessions p50 / p99, {r['requests']:,} req",
                    f"{_ms(r['p50_ms'])} / {_ms(r['p99_ms'])}",
                    f"plain COUNT(*), {s['plain_count']['plan'].split(' on ')[0]}: {_ms(plain)} "
                    f"(median of {len(s['plain_count']['runs_ms'])}); same count on the index in SQL: "
                    f"{_ms(s['indexed_count_sql']['median_ms'])}",
                    f"plain / p50 = {_x(ratio)}",
                    "p99 < 5 ms; > 100x faster than the plain count",
                    met,
                    note,
                )
            )
    if (c := rows.get("request_cost")) is not None:
        for clients in ("1", "32"):
            if clients not in c:
                continue
            floor = c[clients]["floor"]
            for name, label in (
                ("balance", "GET /tokens/balance"),
                ("tips", "POST /tips/send (one creator)"),
            ):
                r = c[clients][name]
                worst = max(r["p50_over_floor"], r["floor_rps_over_rps"])
                note = f"{r['unexpected']} non-2xx {r['statuses']}" if r["unexpected"] else ""
                idle = r.get("longest_idle_in_transaction_ms", 0.0)
                if idle >= 100:  # the function held a pooled connection in a transaction without using it
                    note += (
                        "; " if note else ""
                    ) + f"a pooled connection sat idle in its transaction {_ms(idle)}"
                out.append(
                    Line(
                        f"Request cost: {label}, {clients} client{'s' if clients != '1' else ''}",
                        f"p50 / p99, req/s ({r['requests']:,} req)",
                        f"{_ms(r['p50_ms'])} / {_ms(r['p99_ms'])}, {r['rps']:.0f}/s",
                        f"floor (create_app + SELECT 1): {_ms(floor['p50_ms'])} / {_ms(floor['p99_ms'])}, "
                        f"{floor['rps']:.0f}/s",
                        f"p50 {_x(r['p50_over_floor'])}, p99 {_x(r['p99_over_floor'])}, "
                        f"throughput {_x(r['floor_rps_over_rps'])}",
                        "within 2x of the floor (p50 and req/s)",
                        worst <= 2 and r["unexpected"] == 0,
                        note,
                    )
                )
    if (sbs := rows.get("side_by_side")) is not None:
        out.extend(_side_by_side(sbs))
    if (b := rows.get("billing")) is not None:
        sweep, single, books = b["sweep"], b["one_at_a_time"], b["books"]
        books_ok = (
            books["reconcile_ok"]
            and books["minutes_charged_twice"] == 0
            and books["calls_total_not_their_charges"] == 0
        )
        fanout = sweep.get("fanout_seconds")
        out.append(
            Line(
                f"Billing sweep, {b['calls']:,} calls due",
                "one GET /cron/bill-active-calls (commit, response)",
                f"{sweep['seconds']:.2f} s for {sweep['answer'].get('minutesBilled', 0):,} minutes"
                + (f" (+{fanout:.1f} s to deliver {sweep['events']:,} events)" if fanout is not None else ""),
                f"one at a time (bill_call_minute, a transaction each): {single['seconds']:.1f} s",
                f"{_x(b['speedup'])}",
                "< 2 s; > 20x; books balance",
                sweep["seconds"] < 2 and b["speedup"] > 20 and books_ok and b["sweep_charged_all"],
                (
                    "reconcile ok, no minute charged twice, every total = its charges"
                    if books_ok
                    else f"books: {books}"
                )
                + (
                    f"; the sweep answered {sweep['status']}: {sweep.get('error', '')[:300]}"
                    if sweep.get("error")
                    else ""
                ),
            )
        )
    if (k := rows.get("coldstart")) is not None and k.get("heaviest"):
        heavy = k["functions"][k["heaviest"]]
        bare, floor = k["bare"], k.get("floor", {})
        over = k["over_1_5x"]
        imports = ", ".join(f"{i['package']} {i['self_ms']:.0f}" for i in k["heaviest_imports"][:6])
        beyond = ", ".join(
            f"{i['package']} +{i['self_ms']:.0f}" for i in k.get("heaviest_beyond_floor", [])[:5]
        )
        out.append(
            Line(
                f"Cold start, {len(k['functions'])} functions (median of {k['runs']})",
                "fresh process: import + first request",
                f"heaviest {k['heaviest'].removeprefix('api/')}: {_ms(heavy['total_ms'])} "
                f"(import {_ms(heavy['import_ms'])} + request {_ms(heavy['first_request_ms'])})",
                f"bare FastAPI: {_ms(bare.get('total_ms'))} (import {_ms(bare.get('import_ms'))}); "
                f"floor function (create_app + pool): {_ms(floor.get('total_ms'))} "
                f"({floor.get('over_bare', 0):.1f}x bare)",
                f"{_x(heavy['over_bare'])}; {len(over)} of {len(k['functions'])} over 1.5x",
                "no function over 1.5x the bare app",
                not over and not k["failed"],
                f"heaviest's imports (self ms): {imports}; beyond the floor's: {beyond or 'none'}; "
                f"{k.get('interpreter', '')}",
            )
        )
    if (t := rows.get("token_verify")) is not None:
        out.append(
            Line(
                "Token verification (lib.auth, warm cache)",
                f"per verify, p50 (mean), {t['verifications']:,} each",
                f"HS256 {t['HS256']['p50_us']:.0f} us ({t['HS256']['mean_us']:.0f}); "
                f"ES256 {t['ES256']['p50_us']:.0f} us ({t['ES256']['mean_us']:.0f})",
                f"JWKS fetched {t['jwks_fetches']}x in all",
                f"ES256 / HS256 {_x(t['ES256']['p50_us'] / max(t['HS256']['p50_us'], 1e-9))}",
                "-",
                None,
            )
        )
    if (rt := rows.get("realtime")) is not None:
        r = rt["from_request"]
        out.append(
            Line(
                "Realtime: tip -> websocket (soketi)",
                f"p50 / p99, {r['samples']} tips",
                f"{_ms(r['p50_ms'])} / {_ms(r['p99_ms'])} from the request",
                f"from the response (commit done): {_ms(rt['from_response']['p50_ms'])} / "
                f"{_ms(rt['from_response']['p99_ms'])}",
                "-",
                "< 500 ms",
                r["p99_ms"] < 500 and rt["missed"] == 0,
                f"{rt['missed']} events missed" if rt["missed"] else "",
            )
        )
    if (w := rows.get("webhook")) is not None:
        out.append(
            Line(
                "Stripe webhook -> credit committed",
                f"p50 / p99, {w['sent']} payment_intent.succeeded",
                f"{_ms(w['p50_ms'])} / {_ms(w['p99_ms'])}",
                f"{w['credited']} of {w['sent']} credits found in the ledger",
                "-",
                "< 2 s",
                w["p99_ms"] < 2000 and w["credited"] == w["sent"],
            )
        )
    return out


_HEADERS = ("Row", "Measure", "Result", "Beside it", "Ratio", "Goal", "Met")


def _side_by_side(sbs: dict[str, Any]) -> list[Line]:
    """Goals 1-3 of issue 15: the functions beside the floor (bare FastAPI) and the Express peer, wrk, one run."""
    t = sbs["targets"]

    def fig(key: str) -> str:
        r = t[key]
        return f"{_ms(r['p50_ms'])} / {_ms(r['p99_ms'])}, {r['rps']:.0f}/s"

    def refs(clients: int) -> str:
        beside = f"floor (bare FastAPI + psycopg + PyJWT) {fig(f'floor@{clients}')}"
        if f"express@{clients}" in t:
            beside += f"; Express + pg {fig(f'express@{clients}')}"
        return beside

    out: list[Line] = []
    for name, label, clients, rule in (
        ("balance", "GET /tokens/balance", 1, "share"),
        ("balance", "GET /tokens/balance", 32, "share"),
        ("tips", "POST /tips/send (one creator)", 1, "within"),
        ("active_sessions", "GET /stats/active-sessions", 1, "p99"),
    ):
        key, floor = f"{name}@{clients}", t[f"floor@{clients}"]
        if key not in t:
            continue
        r = t[key]
        share, p50x = r["rps"] / floor["rps"], r["p50_ms"] / floor["p50_ms"]
        if rule == "share":
            goal, met = ">= 50% of the floor's req/s, p50 within 2x", share >= 0.5 and p50x <= 2
        elif rule == "within":
            goal, met = "within 2x of the floor (p50 and req/s)", share >= 0.5 and p50x <= 2
        else:
            goal, met = "p99 < 5 ms", r["p99_ms"] < 5
        out.append(
            Line(
                f"Side by side: {label}, {clients} client{'s' if clients != 1 else ''}",
                f"wrk p50 / p99, req/s (median of {sbs['rounds']} x {sbs['seconds']:g} s)",
                fig(key),
                refs(clients),
                f"req/s {share:.0%} of the floor, p50 {_x(p50x)}",
                goal,
                met and r["non2xx"] == 0,
                f"{r['non2xx']} non-2xx" if r["non2xx"] else "",
            )
        )
    return out


def _cells(line: Line) -> list[str]:
    met = "-" if line.met is None else ("yes" if line.met else "NO")
    return [line.row, line.measure, line.result, line.beside, line.ratio, line.goal, met]


def text_table(table: list[Line]) -> str:
    """The table for a terminal: one block per row (the cells are too long for columns)."""
    out = []
    for line in table:
        met = "-" if line.met is None else ("met" if line.met else "MISSED")
        out.append(f"{line.row}  [{met}]")
        out.append(f"    {line.measure}: {line.result}")
        out.append(f"    beside it: {line.beside}")
        if line.ratio != "-":
            out.append(f"    ratio: {line.ratio}")
        if line.goal != "-":
            out.append(f"    goal: {line.goal}")
        if line.note:
            out.append(f"    note: {line.note}")
    return "\n".join(out)


def markdown(table: list[Line], meta: dict[str, Any], rows: dict[str, Any]) -> str:
    """bench.md: the table, the machine, and the cold start of every function."""

    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    parts = [
        f"# Benchmarks ({meta['scale']} scale)",
        "",
        f"Run {meta['generated_at']} in {meta['duration_s']:.0f} s on {meta['machine']['cpu']} "
        f"({meta['machine']['nproc']} cores, {meta['machine']['memory']} RAM), {meta['machine']['postgres']}. "
        "Regenerate: `scripts/bench` (full) or `scripts/bench --scale small`; figures in bench.json.",
        "",
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "---|" * len(_HEADERS),
    ]
    parts += ["| " + " | ".join(esc(c) for c in _cells(line)) + " |" for line in table]
    notes = [f"- {line.row}: {line.note}" for line in table if line.note]
    if notes:
        parts += ["", "Notes:", *notes]
    if (k := rows.get("coldstart")) and "error" not in k and k.get("functions"):
        parts += [
            "",
            f"## Cold start per function (median of {k['runs']}, {k.get('interpreter', '')})",
            "",
            "| Function | Import | First request | Total | x bare | Status |",
            "|---|---|---|---|---|---|",
            f"| bare FastAPI | {_ms(k['bare'].get('import_ms'))} | {_ms(k['bare'].get('first_request_ms'))} | "
            f"{_ms(k['bare'].get('total_ms'))} | 1.0x | {k['bare'].get('statuses')} |",
        ]
        if (floor := k.get("floor")) and "total_ms" in floor:
            parts.append(
                f"| floor function (create_app + pool) | {_ms(floor['import_ms'])} | "
                f"{_ms(floor['first_request_ms'])} | {_ms(floor['total_ms'])} | {floor['over_bare']:.2f}x | "
                f"{floor.get('statuses')} |"
            )
        ranked = sorted(k["functions"].items(), key=lambda kv: -kv[1].get("total_ms", 0))
        for rel, f in ranked:
            if "total_ms" not in f:
                parts.append(f"| {esc(rel)} | failed | | | | |")
                continue
            parts.append(
                f"| {esc(rel)} | {_ms(f['import_ms'])} | {_ms(f['first_request_ms'])} | {_ms(f['total_ms'])} | "
                f"{f['over_bare']:.2f}x | {f.get('statuses')} |"
            )
    return "\n".join(parts) + "\n"


def write(out_dir: Path, table: list[Line], meta: dict[str, Any], rows: dict[str, Any]) -> dict[str, Path]:
    """bench.json, bench.md and bench.png under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "bench.json", "md": out_dir / "bench.md", "png": out_dir / "bench.png"}
    document = {**meta, "table": [asdict(line) for line in table], "rows": rows}
    paths["json"].write_text(json.dumps(document, indent=2, default=str) + "\n")
    paths["md"].write_text(markdown(table, meta, rows))
    draw(paths["png"], meta, rows)
    return paths


def draw(path: Path, meta: dict[str, Any], rows: dict[str, Any]) -> None:
    """The figures as bar charts (log scales where they span decades)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {name: r for name, r in rows.items() if not (isinstance(r, dict) and "error" in r)}
    fig = plt.figure(figsize=(18, 20))
    grid = fig.add_gridspec(3, 3, height_ratios=[1, 1, 2.2], hspace=0.45, wspace=0.35)
    fig.suptitle(
        f"Digis API benchmarks, {meta['scale']} scale, {meta['generated_at']} "
        f"({meta['machine']['nproc']} cores, {meta['machine']['cpu']})",
        fontsize=14,
    )

    def bars(ax: Any, labels: list[str], values: list[float], title: str, unit: str, *, log: bool = False,
             goal: float | None = None) -> None:  # fmt: skip
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        ax.bar(range(len(values)), values, color=[colors[i % len(colors)] for i in range(len(values))])
        ax.set_xticks(range(len(values)), labels, rotation=25, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        if log:
            ax.set_yscale("log")
        for i, v in enumerate(values):
            ax.annotate(f"{v:,.1f}" if v < 100 else f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=7)
        if goal is not None:
            ax.axhline(goal, color="red", linestyle="--", linewidth=1)

    if (s := rows.get("active_sessions")) is not None:
        bars(
            fig.add_subplot(grid[0, 0]),
            ["Redis p50", "Redis p99", "no Redis p50", "no Redis p99", "index (SQL)", "plain COUNT(*)"],
            [s["redis"]["p50_ms"], s["redis"]["p99_ms"], s["database"]["p50_ms"], s["database"]["p99_ms"],
             s["indexed_count_sql"]["median_ms"], s["plain_count"]["median_ms"]],
            f"Active sessions, {s['count']:,} active (goal p99 < 5 ms)", "ms", log=True, goal=5,
        )  # fmt: skip
    if (c := rows.get("request_cost")) is not None:
        for col, clients in enumerate(("1", "32")):
            if clients not in c:
                continue
            r = c[clients]
            labels, values = [], []
            for name in ("floor", "balance", "tips"):
                labels += [f"{name} p50", f"{name} p99"]
                values += [r[name]["p50_ms"], r[name]["p99_ms"]]
            bars(fig.add_subplot(grid[0, 1 + col]), labels, values, f"Request latency, {clients} client(s)", "ms",
                 log=True)  # fmt: skip
        ax = fig.add_subplot(grid[1, 0])
        names = ["floor", "balance", "tips"]
        width = 0.38
        for i, clients in enumerate(("1", "32")):
            if clients in c:
                values = [c[clients][n]["rps"] for n in names]
                ax.bar([x + i * width for x in range(3)], values, width, label=f"{clients} client(s)")
        ax.set_xticks([x + width / 2 for x in range(3)], names)
        ax.set_title("Throughput (requests/s)", fontsize=10)
        ax.legend(fontsize=8)
    if (b := rows.get("billing")) is not None:
        labels = ["sweep", "one at a time"]
        values = [b["sweep"]["seconds"], b["one_at_a_time"]["seconds"]]
        if b["sweep"].get("fanout_seconds") is not None:
            labels.insert(1, "sweep events delivered")
            values.insert(1, b["sweep"]["fanout_seconds"])
        bars(fig.add_subplot(grid[1, 1]), labels, values, f"Billing {b['calls']:,} due calls (goal < 2 s)", "s",
             log=True, goal=2)  # fmt: skip
    lat_labels, lat_values = [], []
    if (rt := rows.get("realtime")) is not None:
        lat_labels += ["tip->ws p50", "tip->ws p99"]
        lat_values += [rt["from_request"]["p50_ms"], rt["from_request"]["p99_ms"]]
    if (w := rows.get("webhook")) is not None:
        lat_labels += ["webhook p50", "webhook p99"]
        lat_values += [w["p50_ms"], w["p99_ms"]]
    if (t := rows.get("token_verify")) is not None:
        lat_labels += ["HS256 verify", "ES256 verify"]
        lat_values += [t["HS256"]["p50_us"] / 1000, t["ES256"]["p50_us"] / 1000]
    if lat_values:
        bars(fig.add_subplot(grid[1, 2]), lat_labels, lat_values, "Latency: realtime, webhook, token verify", "ms",
             log=True)  # fmt: skip
    if (k := rows.get("coldstart")) is not None and k.get("functions"):
        ax = fig.add_subplot(grid[2, :])
        ranked = sorted(((rel, f) for rel, f in k["functions"].items() if "total_ms" in f),
                        key=lambda kv: kv[1]["total_ms"])  # fmt: skip
        names = [rel.removeprefix("api/") for rel, _ in ranked]
        imports = [f["import_ms"] for _, f in ranked]
        first = [f["first_request_ms"] for _, f in ranked]
        ax.barh(names, imports, label="import")
        ax.barh(names, first, left=imports, label="first request")
        bare = k["bare"].get("total_ms")
        if bare:
            ax.axvline(bare, color="black", linewidth=1, label=f"bare FastAPI {bare:.0f} ms")
            ax.axvline(bare * 1.5, color="red", linestyle="--", linewidth=1, label="1.5x bare (goal)")
        if (floor := k.get("floor", {}).get("total_ms")) is not None:
            ax.axvline(
                floor, color="gray", linestyle=":", linewidth=1.5, label=f"floor function {floor:.0f} ms"
            )
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("ms (median of fresh processes)")
        ax.set_title(f"Cold start per function ({k.get('interpreter', '')})", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=90)
    plt.close(fig)
