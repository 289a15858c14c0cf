"""`report.html`: the run at a glance, for the county office — one self-contained file.

Charts are plotly figures; plotly.js itself is inlined once (the file opens offline, from a USB
stick), and each chart is drawn by a small inline script from its JSON. Chinese first, English
after. What it shows: flagged persons and households by rule and by township, the trend over
the recorded runs (new / resolved / open), verification progress and the confirmation rate by
rule, link quality (records linked, for review, unlinked per registry; the match-weight
distribution with the thresholds; blocking passes and their pairs), the rules not applied and
why.

The data is gathered (build_report_data) apart from the drawing (render_report), masked like
every output; the plotly.js bundle is library code and is not passed through the masking.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from linkaudit.audit.rules import Rule
from linkaudit.config import Manifest
from linkaudit.engines.duckdb import Workspace
from linkaudit.history import HistoryOutcome
from linkaudit.history_sql import other_runs_sql
from linkaudit.link.engine import LinkReport
from linkaudit.privacy import mask_text, mask_value
from linkaudit.report.atomic import atomic_path
from linkaudit.report.columns import DISCLAIMER
from linkaudit.report.labels import OUTCOME_ZH, SCOPE_ZH, SEVERITY_ZH

FONT = '"Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", "Source Han Sans SC", sans-serif'
COLORS = {
    "persons": "#2F6DB5",
    "households": "#E08A2E",
    "new": "#C0392B",
    "resolved": "#27AE60",
    "open": "#2F6DB5",
    "confirmed": "#C0392B",
    "cleared": "#27AE60",
    "pending": "#F1C40F",
    "unverified": "#BDC3C7",
    "match": "#2F6DB5",
    "review": "#F1C40F",
    "unlinked": "#BDC3C7",
}


def _weight(p: float) -> float:
    # Rounded: a long float in the page reads like a number that should have been masked.
    return round(math.log2(p / (1 - p)), 3)


def build_report_data(
    ws: Workspace,
    summary: dict[str, Any],
    rules: list[Rule],
    link_report: LinkReport,
    history: HistoryOutcome,
    manifest: Manifest,
) -> dict[str, Any]:
    """Everything the report draws, as plain data (masked)."""
    cases = history.exceptions
    titles = {r.id: r.title for r in rules}
    rule_rows = []
    for rule_id, r in summary["rules"].items():
        title = titles.get(rule_id)
        rule_rows.append(
            {
                "rule_id": rule_id,
                "title_zh": title.zh if title else r.get("title_zh", rule_id),
                "title_en": title.en if title else r.get("title_en", ""),
                "severity": r.get("severity"),
                "scope": r.get("scope"),
                "persons": r.get("persons", 0),
                "households": r.get("households", 0),
                "skipped": r.get("skipped"),
            }
        )
    # Persons and households flagged per township (a person flagged by two rules counts once).
    people = (
        cases.select(pl.col("township").fill_null("（未填）"), pl.col("person_key").str.split(";"))
        .explode("person_key")
        .group_by("township")
        .agg(pl.col("person_key").n_unique().alias("persons"))
    )
    homes = (
        cases.filter(pl.col("household_key").is_not_null())
        .group_by(pl.col("township").fill_null("（未填）"))
        .agg(pl.col("household_key").n_unique().alias("households"))
    )
    townships = (
        people.join(homes, on="township", how="left")
        .with_columns(pl.col("households").fill_null(0))
        .sort("persons", descending=True)
        .to_dicts()
    )
    # Verification: the latest outcome of each case reported, and the cleared ones suppressed.
    outcomes = pl.concat(
        [
            cases.select("rule_id", "outcome"),
            history.suppressed.select("rule_id", pl.lit("cleared").alias("outcome")),
        ]
    )
    verification = (
        outcomes.group_by("rule_id")
        .agg(
            pl.len().alias("flagged"),
            (pl.col("outcome") == "confirmed").sum().alias("confirmed"),
            (pl.col("outcome") == "cleared").sum().alias("cleared"),
            (pl.col("outcome") == "pending").sum().alias("pending"),
            pl.col("outcome").is_null().sum().alias("unverified"),
        )
        .sort("rule_id")
        .to_dicts()
    )
    for v in verification:
        done = v["confirmed"] + v["cleared"]
        v["confirmation_rate"] = round(v["confirmed"] / done, 4) if done else None
    trend = []
    if ws.has_table("runs"):
        for run_id, started, counts in ws.rows(other_runs_sql(), [summary["run_id"]]):
            c = json.loads(counts or "{}")
            trend.append(_trend_point(run_id, str(started)[:16], c))
    trend.append(_trend_point(summary["run_id"], summary["started_at"][:16], history.counts))
    link_records = {r.registry: r for r in link_report.registries}
    registries = []
    for name, r in summary["registries"].items():
        lr = link_records.get(name)
        registries.append(
            {
                "registry": name,
                "department": r.get("department") or name,
                "rows_read": r.get("rows_read"),
                "rows_rejected": r.get("rows_rejected"),
                "records": lr.records if lr else None,
                "linked": lr.matches if lr else None,
                "review": lr.reviews if lr else None,
                "unlinked": (lr.records - lr.matches - lr.reviews) if lr else None,
            }
        )
    cfg = manifest.linkage
    data = {
        "run_id": summary["run_id"],
        "started_at": summary["started_at"],
        "as_of": summary["as_of"],
        "recorded": summary.get("recorded", True),
        "cases": history.counts,
        "rules": rule_rows,
        "townships": townships,
        "trend": trend,
        "verification": verification,
        "registries": registries,
        "weights": [{"weight": w, "records": n} for w, n in link_report.weight_histogram],
        "thresholds": {
            "match": {"p": cfg.match_threshold, "weight": _weight(cfg.match_threshold)},
            "review": {"p": cfg.review_threshold, "weight": _weight(cfg.review_threshold)},
        },
        "passes": [p.__dict__ for p in link_report.passes],
        "not_applied": [
            {"rule_id": r["rule_id"], "title_zh": r["title_zh"], "reason": r["skipped"]}
            for r in rule_rows
            if r["skipped"]
        ],
        "notes": [*summary.get("warnings", []), *summary.get("load_notes", [])]
        + summary.get("rule_notes", []),
    }
    masked: dict[str, Any] = mask_value(data)
    return masked


def _trend_point(run_id: str, when: str, c: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "when": when,
        "new": c.get("new", 0) + c.get("reopened", 0),
        "resolved": c.get("resolved", 0),
        "open": c.get("exceptions", 0),
    }


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "font": {"family": FONT, "size": 12},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 40},
        "height": 360,
        "legend": {"orientation": "h", "y": -0.2},
        "plot_bgcolor": "#FFFFFF",
        "paper_bgcolor": "#FFFFFF",
        "yaxis": {"gridcolor": "#E5E5E5", "automargin": True},
        "xaxis": {"automargin": True},
    }
    layout.update(extra)
    return layout


def _figures(data: dict[str, Any]) -> dict[str, Any]:
    """The report's plotly figures by id (plain figure dicts, validated by plotly)."""
    import plotly.graph_objects as go

    figs: dict[str, Any] = {}
    applied = [r for r in data["rules"] if not r["skipped"]]
    names = [f"{r['title_zh']}<br><sub>{r['rule_id']}</sub>" for r in applied]
    figs["rules"] = go.Figure(
        [
            go.Bar(
                name="人 persons",
                y=names,
                x=[r["persons"] for r in applied],
                orientation="h",
                marker_color=COLORS["persons"],
            ),
            go.Bar(
                name="户 households",
                y=names,
                x=[r["households"] for r in applied],
                orientation="h",
                marker_color=COLORS["households"],
            ),
        ],
        _layout(
            "按规则的疑点人数和户数 Flagged persons and households by rule",
            barmode="group",
            height=max(320, 60 * len(applied) + 120),
            yaxis={"autorange": "reversed", "automargin": True},
        ),
    )
    towns = data["townships"]
    figs["townships"] = go.Figure(
        [
            go.Bar(
                name="人 persons",
                x=[t["township"] for t in towns],
                y=[t["persons"] for t in towns],
                marker_color=COLORS["persons"],
            ),
            go.Bar(
                name="户 households",
                x=[t["township"] for t in towns],
                y=[t["households"] for t in towns],
                marker_color=COLORS["households"],
            ),
        ],
        _layout(
            "按乡镇的疑点人数和户数 Flagged persons and households by township", barmode="group"
        ),
    )
    trend = data["trend"]
    x = [f"{t['when']}<br><sub>{t['run_id'][-6:]}</sub>" for t in trend]
    figs["trend"] = go.Figure(
        [
            go.Scatter(
                name=label,
                x=x,
                y=[t[key] for t in trend],
                mode="lines+markers",
                line={"color": COLORS[key]},
            )
            for key, label in (
                ("open", "在册疑点 open"),
                ("new", "新增 new"),
                ("resolved", "已消除 resolved"),
            )
        ],
        _layout("历次运行的趋势 Trend across runs", xaxis={"type": "category"}),
    )
    ver = data["verification"]
    rule_names = {r["rule_id"]: r["title_zh"] for r in data["rules"]}
    vy = [rule_names.get(v["rule_id"], v["rule_id"]) for v in ver]
    bars = [
        go.Bar(
            name=f"{OUTCOME_ZH.get(key, '未核实')} {key}",
            y=vy,
            x=[v[key] for v in ver],
            orientation="h",
            marker_color=COLORS[key],
        )
        for key in ("confirmed", "cleared", "pending", "unverified")
    ]
    figs["verification"] = go.Figure(
        bars,
        _layout(
            "核实进度 Verification progress",
            barmode="stack",
            height=max(320, 40 * len(ver) + 120),
            yaxis={"autorange": "reversed", "automargin": True},
        ),
    )
    rated = [v for v in ver if v["confirmation_rate"] is not None]
    figs["confirmation"] = go.Figure(
        [
            go.Bar(
                y=[rule_names.get(v["rule_id"], v["rule_id"]) for v in rated],
                x=[v["confirmation_rate"] for v in rated],
                orientation="h",
                marker_color=COLORS["confirmed"],
                text=[f"{v['confirmation_rate']:.0%}" for v in rated],
                textposition="auto",
            )
        ],
        _layout(
            "属实率（已核实疑点中）Confirmation rate of verified cases",
            height=max(240, 40 * len(rated) + 120),
            xaxis={"range": [0, 1], "tickformat": ".0%"},
            yaxis={"autorange": "reversed", "automargin": True},
            annotations=[]
            if rated
            else [
                {
                    "text": "尚无核实结果 No outcomes imported yet",
                    "showarrow": False,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                }
            ],
        ),
    )
    regs = [r for r in data["registries"] if r["records"] is not None]
    rx = [f"{r['department']}<br><sub>{r['registry']}</sub>" for r in regs]
    figs["links"] = go.Figure(
        [
            go.Bar(name=label, x=rx, y=[r[key] for r in regs], marker_color=COLORS[color])
            for key, label, color in (
                ("linked", "已关联 linked", "match"),
                ("review", "待复核 review", "review"),
                ("unlinked", "未关联 unlinked", "unlinked"),
            )
        ],
        _layout("各部门记录的关联情况 Records linked per registry", barmode="stack"),
    )
    weights = data["weights"]
    th = data["thresholds"]
    figs["weights"] = go.Figure(
        [
            go.Bar(
                x=[w["weight"] + 2.5 for w in weights],
                y=[w["records"] for w in weights],
                width=[5] * len(weights),
                marker_color=COLORS["match"],
                name="关联记录 links",
            )
        ],
        _layout(
            "匹配权重分布 Match-weight distribution (bits)",
            xaxis={"title": {"text": "匹配权重 match weight"}},
            yaxis={"title": {"text": "记录数 records"}, "gridcolor": "#E5E5E5"},
            shapes=[
                {
                    "type": "line",
                    "x0": t["weight"],
                    "x1": t["weight"],
                    "yref": "paper",
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": color, "dash": "dash", "width": 2},
                }
                for t, color in ((th["match"], "#C0392B"), (th["review"], "#E08A2E"))
            ],
            annotations=[
                {
                    "x": t["weight"],
                    "yref": "paper",
                    "y": 1.02,
                    "text": f"{label} p={t['p']:g}",
                    "showarrow": False,
                    "xanchor": "left",
                }
                for t, label in ((th["match"], "关联阈值 match"), (th["review"], "复核阈值 review"))
            ],
        ),
    )
    passes = [p for p in data["passes"] if not p.get("skipped")]
    px = [f"{p['registry']} · {p['name']}" for p in passes]
    figs["passes"] = go.Figure(
        [go.Bar(x=px, y=[p["pairs"] for p in passes], marker_color=COLORS["open"])],
        _layout(
            "分块比对的候选对数 Candidate pairs per blocking pass",
            yaxis={"type": "log", "title": {"text": "候选对 pairs"}, "gridcolor": "#E5E5E5"},
        ),
    )
    return figs


_CSS = """
body { font-family: FONT; margin: 0; color: #222; background: #F5F6F8; }
header { background: #1F4E79; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; font-size: 13px; opacity: .9; }
main { max-width: 1180px; margin: 0 auto; padding: 12px 20px 40px; }
section { background: #fff; border-radius: 6px; margin: 14px 0; padding: 12px 16px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
h2 { font-size: 17px; margin: 4px 0 8px; color: #1F4E79; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { flex: 1 1 150px; background: #fff; border-radius: 6px; padding: 10px 14px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card b { display: block; font-size: 24px; color: #1F4E79; }
.card span { font-size: 12px; color: #555; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid #E5E5E5; padding: 5px 8px; text-align: left; }
th { background: #F0F4F9; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { font-size: 12px; color: #555; }
""".replace("FONT", FONT)


def _rule_row(r: dict[str, Any]) -> str:
    e = html.escape
    severity = SEVERITY_ZH.get(r["severity"] or "", str(r["severity"]))
    scope = SCOPE_ZH.get(r["scope"] or "", str(r["scope"]))
    persons = "-" if r["skipped"] else f"{r['persons']:,}"
    households = "-" if r["skipped"] else f"{r['households']:,}"
    return (
        f"<tr><td>{e(r['title_zh'])}<br><span class='note'>{e(r['title_en'])}</span></td>"
        f"<td>{e(r['rule_id'])}</td><td>{e(severity)}</td><td>{e(scope)}</td>"
        f"<td class='n'>{persons}</td><td class='n'>{households}</td></tr>"
    )


def render_report(data: dict[str, Any], plotly_js: str) -> str:
    """The report's HTML: plotly.js inlined once, then each chart from its JSON."""
    import plotly.io as pio

    e = html.escape
    data = mask_value(data)  # (already masked by build_report_data; masking is idempotent)
    figs = _figures(data)
    config = {"displaylogo": False, "responsive": True, "locale": "zh-CN"}
    charts = {}
    for name, fig in figs.items():
        spec = pio.to_json(fig, validate=False, pretty=False).replace("</", "<\\/")
        # The chart's JSON is not passed through mask_text: its numbers are base64 arrays,
        # which look like tokens; the data it is drawn from is masked above.
        charts[name] = (
            f'<div id="chart-{name}" class="chart"></div>\n<script>(function(){{var f={spec};'
            f'Plotly.newPlot("chart-{name}",f.data,f.layout,{json.dumps(config)});}})();'
            "</script>"
        )
    slots = {name: f"@@chart-{name}@@" for name in charts}
    c = data["cases"]
    cards = [
        ("在册疑点 open cases", c.get("exceptions", 0)),
        ("新增 new", c.get("new", 0) + c.get("reopened", 0)),
        ("已消除 resolved", c.get("resolved", 0)),
        ("核实不属实、未再列出 cleared, not listed", c.get("suppressed_cleared", 0)),
        ("未执行的规则 rules not applied", len(data["not_applied"])),
    ]
    card_html = "".join(
        f"<div class='card'><b>{n:,}</b><span>{e(t)}</span></div>" for t, n in cards
    )
    reg_rows = "".join(
        "<tr>"
        + f"<td>{e(str(r['department']))} <span class='note'>{e(r['registry'])}</span></td>"
        + "".join(
            f"<td class='n'>{'' if r[k] is None else f'{r[k]:,}'}</td>"
            for k in ("rows_read", "rows_rejected", "linked", "review", "unlinked")
        )
        + "</tr>"
        for r in data["registries"]
    )
    if data["not_applied"]:
        skipped = "".join(
            f"<tr><td>{e(r['title_zh'])}</td><td>{e(r['rule_id'])}</td><td>{e(str(r['reason']))}</td></tr>"
            for r in data["not_applied"]
        )
        skipped_html = (
            "<table><tr><th>规则 rule</th><th>编号 id</th><th>原因 reason</th></tr>"
            f"{skipped}</table>"
        )
    else:
        skipped_html = "<p>所有规则均已执行。Every rule was applied.</p>"
    rule_rows = "".join(_rule_row(r) for r in data["rules"])
    notes = "".join(f"<li>{e(str(n))}</li>" for n in data["notes"])
    notes_html = f"<section><h2>提示 Notes</h2><ul>{notes}</ul></section>" if notes else ""
    trial = "" if data["recorded"] else "（试运行，未记入历史 trial run, not recorded）"
    body = f"""
<header><h1>扶贫对象数据比对报告 <small>linkaudit audit report</small></h1>
<p>运行 run {e(data["run_id"])}{e(trial)} · 审计基准日 as of {e(data["as_of"])} ·
生成 {e(data["started_at"][:19])} UTC</p>
<p>{e(DISCLAIMER)}</p></header>
<main>
<div class="cards">{card_html}</div>
<section><h2>按规则 By rule</h2>{slots["rules"]}
<table><tr><th>规则 rule</th><th>编号 id</th><th>类别 severity</th><th>范围 scope</th>
<th>人数 persons</th><th>户数 households</th></tr>{rule_rows}</table></section>
<section><h2>按乡镇 By township</h2>{slots["townships"]}</section>
<section><h2>趋势 Trend</h2>{slots["trend"]}
<p class="note">新增含重现的疑点；已消除为上次运行有、本次不再出现的疑点。
New includes reopened cases; resolved are cases of the previous run no longer flagged.</p>
</section>
<div class="grid"><section><h2>核实进度 Verification</h2>{slots["verification"]}</section>
<section><h2>属实率 Confirmation rate</h2>{slots["confirmation"]}</section></div>
<section><h2>关联质量 Link quality</h2>{slots["links"]}
<table><tr><th>部门 registry</th><th>读入行 rows read</th><th>未能读取 quarantined</th>
<th>已关联 linked</th><th>待复核 review</th><th>未关联 unlinked</th></tr>{reg_rows}</table>
<div class="grid"><div>{slots["weights"]}</div><div>{slots["passes"]}</div></div></section>
<section><h2>未执行的规则 Rules not applied</h2>{skipped_html}</section>
{notes_html}
</main>"""
    body = mask_text(body)
    for name, chart in charts.items():
        body = body.replace(slots[name], chart)
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>扶贫对象数据比对报告 {e(mask_text(data['run_id']))}</title>\n"
        f"<style>{_CSS}</style>\n"
        # The library, inlined (offline); it holds no data of ours and is not masked.
        f'<script id="plotly-js">{plotly_js}</script>\n'
        f"</head>\n<body>{body}\n</body></html>\n"
    )


def render_page(data: dict[str, Any]) -> str:
    """The whole page, plotly.js included: all the work of the report and none of its file
    (it runs in a worker thread while the workbooks are written; see audit.run)."""
    from plotly.offline import get_plotlyjs

    return render_report(data, get_plotlyjs())


def write_page(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_report(path: Path, data: dict[str, Any]) -> None:
    write_page(path, render_page(data))
