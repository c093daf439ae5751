"""Write the results: latest.json, latest.md (tables, ratios to Oxigraph, targets), and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TABLE_COLUMNS = ("kind", "mode", "server", "req/s", "× oxigraph", "p50 ms", "p99 ms", "errors",
                 "results")
SMALL = ("point", "join", "construct")
MB = 1024 * 1024


def _rows(size: dict[str, Any]) -> list[dict[str, Any]]:
    return list(size.get("rows", []))


def _rps(size: dict[str, Any], server: str, kind: str, mode: str) -> float | None:
    for row in _rows(size):
        if (row["server"], row["kind"], row["mode"]) == (server, kind, mode) and "rps" in row:
            return float(row["rps"])
    return None


def _rps_or_estimate(size: dict[str, Any], server: str, kind: str, mode: str) -> float | None:
    """wrk's rate; when wrk saw no request finish, 1 / the single-request latency of the check."""
    rps = _rps(size, server, kind, mode)
    if rps:
        return rps
    check = size.get("servers", {}).get(server, {}).get("checks", {}).get(f"{kind}/{mode}", {})
    if check.get("status") == 200 and check.get("ms"):
        return 1000.0 / float(check["ms"])
    return rps


def ratio(size: dict[str, Any], row: dict[str, Any], reference: str = "oxigraph") -> float | None:
    ref = _rps(size, reference, row["kind"], row["mode"])
    if ref is None or "rps" not in row or ref <= 0:
        return None
    return float(row["rps"]) / ref


def _results(size: dict[str, Any], server: str, kind: str, mode: str) -> Any:
    for row in _rows(size):
        if (row["server"], row["kind"], row["mode"]) == (server, kind, mode):
            return row.get("check_results")
    return None


def results_cell(size: dict[str, Any], row: dict[str, Any]) -> str:
    """Solutions/triples of one request of this kind; flagged when Oxigraph's count differs."""
    mine = row.get("check_results")
    ref = _results(size, "oxigraph", row["kind"], row["mode"])
    if mine is None:
        return "?" if row.get("check_status") == 200 else f"HTTP {row.get('check_status')}"
    if ref is not None and mine != ref and row["server"] != "oxigraph":
        return f"{mine} ≠ {ref}"
    return str(mine)


def table_rows(size: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in _rows(size):
        r = ratio(size, row)
        out.append({
            "kind": row["kind"], "mode": row["mode"], "server": row["server"],
            "req/s": row.get("rps"), "× oxigraph": None if r is None else round(r, 2),
            "p50 ms": row.get("p50_ms"), "p99 ms": row.get("p99_ms"),
            "errors": row.get("errors", row.get("error", "?")),
            "results": results_cell(size, row),
        })
    return out


# --- targets ---------------------------------------------------------------------------------

def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ratios(size: dict[str, Any], server: str, ref: str, kinds: tuple[str, ...],
            mode: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for kind in kinds:
        a, b = _rps(size, server, kind, mode), _rps_or_estimate(size, ref, kind, mode)
        out[kind] = None if a is None or not b else a / b
    return out


def _ratio_target(name: str, sizes: list[dict[str, Any]], kinds: tuple[str, ...], mode: str,
                  threshold: float, ref: str = "oxigraph") -> dict[str, Any]:
    parts, values = [], []
    for size in sizes:
        found = _ratios(size, "kg", ref, kinds, mode)
        known = {k: v for k, v in found.items() if v is not None}
        if not known:
            continue
        values.extend(known.values())
        differ = {k for k in known if _results(size, "kg", k, mode) != _results(size, ref, k, mode)}
        parts.append(f"{size['size']}: " + ", ".join(
            f"{k} {v:.2f}×{' (answers differ!)' if k in differ else ''}" for k, v in known.items()))
    met = None if not values else min(values) >= threshold
    return {"target": name, "measured": "; ".join(parts) or "not measured", "met": met}


def _paired_target(name: str, sizes: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """The cold small-query target on bench.paired's rounds: the median of each kind's
    per-round kg/Oxigraph ratios, the rounds' range beside it."""
    parts, medians = [], []
    for size in sizes:
        kinds = size.get("paired", {}).get("kinds", {})
        cells = []
        for kind, entry in kinds.items():
            ratios = entry.get("ratios") or []
            if not ratios:
                continue
            median = entry["ratios_median"]
            medians.append(median)
            cells.append(f"{kind} {median:.2f}× (rounds {min(ratios):.2f}–{max(ratios):.2f})"
                         if len(ratios) > 1 else f"{kind} {median:.2f}×")
        if cells:
            parts.append(f"{size['size']}: " + ", ".join(cells))
    met = None if not medians else min(medians) >= threshold
    rounds = max((len(e.get("ratios") or []) for s in sizes
                  for e in s.get("paired", {}).get("kinds", {}).values()), default=0)
    return {"target": name, "measured": "; ".join(parts), "met": met,
            "note": f"median of {rounds} paired round(s): Oxigraph and kg up at once, driven "
                    "in turn (bench/paired.py); the tables below measure each once, minutes "
                    "apart"}


def main_sizes(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in results.get("sizes", []) if not s.get("scaling_only")]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    sizes = main_sizes(results)
    all_kinds = tuple(dict.fromkeys(r["kind"] for s in sizes for r in _rows(s)))
    cold_small = "cold small queries ≥ 0.5× Oxigraph req/s"
    paired = _paired_target(cold_small, sizes, 0.5)
    out = [
        paired if paired["measured"] else _ratio_target(cold_small, sizes, SMALL, "cold", 0.5),
        _ratio_target("warm repeated queries ≥ 1× Oxigraph req/s", sizes, all_kinds, "warm", 1.0),
    ]
    largest = max(sizes, key=lambda s: s.get("quads", 0), default=None)
    if largest is not None:
        heavy = _ratio_target(f"heavy aggregates ≥ 0.9× Oxigraph (largest store run: "
                              f"{largest['size']})", [largest], ("aggregate",), "cold", 0.9)
        heavy_w = _ratio_target("", [largest], ("aggregate",), "warm", 0.9)
        heavy["measured"] += f" (warm: {heavy_w['measured'].split(': ', 1)[-1]})"
        if largest["size"] != "10m":
            heavy["note"] = "10M store not run: measured on the largest store that was"
        out.append(heavy)
    vs_rdflib = _ratio_target("aggregates ≥ 20× rdflib-endpoint", sizes, ("aggregate",), "cold",
                              20.0, ref="rdflib")
    vs_rdflib["note"] = ("where wrk saw no rdflib request finish, its rate is taken as 1 / the "
                         "latency of one request alone")
    out.append(vs_rdflib)
    stream = [(s["size"], s["servers"]["kg"]) for s in sizes
              if "stream" in s.get("servers", {}).get("kg", {})]
    big = [(label, kg) for label, kg in stream if kg["stream"]["rows_requested"] >= 1_000_000]
    if big:
        label, kg = big[-1]
        st = kg["stream"]
        ok = st["status"] == 200 and st["ttfb_ms"] < 200 and st["rss_growth_mb"] < 100
        measured = (f"{label}: HTTP {st['status']}, first byte {st['ttfb_ms']} ms, total "
                    f"{st['total_s']} s, RSS growth {st['rss_growth_mb']} MB"
                    + _growth_detail(st))
        again = kg.get("stream_again")
        if again:
            measured += (f"; the same SELECT again right after: first byte {again['ttfb_ms']} "
                         f"ms, RSS growth {again['rss_growth_mb']} MB" + _growth_detail(again))
        out.append({"target": "SELECT of 1M rows: first byte < 200 ms, RSS growth < 100 MB",
                    "measured": measured, "met": ok})
    else:
        out.append({"target": "SELECT of 1M rows: first byte < 200 ms, RSS growth < 100 MB",
                    "measured": "no store of ≥ 1M quads run", "met": None})
    build = results.get("build", {}).get("real")
    if build:
        met = build["seconds"] < 10 if build.get("ok") else False
        measured = (f"{build['seconds']} s (median of runs {build.get('runs_s')}), "
                    f"{build['quads']:,} quads" if build.get("ok")
                    else f"build failed after {build['seconds']} s")
        out.append({"target": "`kg build` of the real graph < 10 s", "measured": measured,
                    "met": met})
    else:
        out.append({"target": "`kg build` of the real graph < 10 s", "measured": "not run",
                    "met": None})
    loads = [(s["size"], ld) for s in sizes for ld in s.get("loads", [])
             if ld["tool"].startswith("pyoxigraph")]
    if loads:
        label, ld = max(loads, key=lambda x: x[1]["quads"])
        out.append({"target": "bulk load ≥ 200,000 triples/s",
                    "measured": f"{label}: {ld['quads_per_second']:,} quads/s with "
                    f"Store.bulk_load ({ld['quads']:,} quads in {ld['seconds']} s)",
                    "met": ld["quads_per_second"] >= 200_000})
    ten = [s for s in sizes if s.get("quads", 0) >= 10_000_000]
    kg10 = ten[0]["servers"].get("kg", {}) if ten else {}
    if kg10.get("rss_peak_wrk_mb") is not None:
        peak = max(kg10.get("rss_peak_wrk_mb", 0), kg10.get("rss_idle_mb", 0))
        out.append({"target": "serving the 10M store within 1.5 GB RSS",
                    "measured": f"idle {kg10.get('rss_idle_mb')} MB, peak under wrk {peak} MB",
                    "met": peak <= 1536})
    else:
        out.append({"target": "serving the 10M store within 1.5 GB RSS",
                    "measured": "10M store not run" if not ten else "kg did not run at 10M",
                    "met": None})
    return out


# --- markdown --------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")[:80]


def markdown_table(columns: tuple[str, ...] | list[str], rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    settings = meta.get("settings", {})
    out = [
        "# Benchmark: kg vs `oxigraph serve-read-only` vs rdflib-endpoint",
        "",
        f"Run {meta.get('date')} on {meta.get('machine', {}).get('cpus')} CPUs, "
        f"{meta.get('machine', {}).get('memory_gb')} GB; wrk {settings.get('threads')} threads, "
        f"{settings.get('connections')} connections, {settings.get('duration_s')} s per row; "
        f"shape source `{Path(str(meta.get('source', '?'))).name}`; "
        f"total {meta.get('wall_s')} s{' (quick mode)' if settings.get('quick') else ''}; "
        f"load average at start {meta.get('load_average_at_start')}, at end "
        f"{meta.get('load_average_at_end')} (other work on the machine skews the figures).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()) + ".",
        "",
        "## Targets",
        "",
    ]
    trows = [{"target": t["target"], "measured": t["measured"],
              "met": {True: "yes", False: "**no**", None: "not measured"}[t["met"]],
              "note": t.get("note", "")} for t in targets(results)]
    out.append(_long_table(("target", "measured", "met", "note"), trows))
    for size in results.get("sizes", []):
        if size.get("scaling_only"):
            out += ["", f"<details><summary>Scaling point `{size['size']}`: {size['quads']:,} "
                    "quads (Oxigraph and kg only, shorter runs)</summary>", ""]
            out.append(markdown_table(TABLE_COLUMNS, table_rows(size)))
            out += ["", "</details>"]
            continue
        out += ["", f"## Store `{size['size']}`: {size['quads']:,} quads", ""]
        out.append(markdown_table(TABLE_COLUMNS, table_rows(size)))
        pairs = _paired_table(size)
        if pairs:
            out += ["", "Cold small queries in pairs (bench/paired.py: both servers up, driven "
                    "in turn, each round's ratio from runs seconds apart; req/s medians):", "",
                    pairs]
        out += ["", "Kinds: " + "; ".join(f"**{k}** {d}" for k, d in size.get("kinds", {}).items())
                + ". Cold: every request a distinct query text; warm: one text repeated. "
                "*results*: solutions or triples of one request of the kind (≠ marks a count "
                "that differs from Oxigraph's).", ""]
        left_out = size.get("competency_left_out") or []
        if left_out:
            out += [f"Competency mix: {len(size.get('competency_mix', []))} queries; left out "
                    f"(slower than 1 s alone on Oxigraph, or failing there): "
                    + ", ".join(f"`{q}`" for q in left_out) + ".", ""]
        out.append(_server_table(size))
        lat = _competency_table(size)
        if lat:
            out += ["", "<details><summary>Competency queries, one at a time (median ms)"
                    "</summary>", "", lat, "", "</details>"]
    build = results.get("build", {})
    if build.get("curve"):
        out += ["", "## `kg build` against the number of documents", ""]
        out.append("Curated extraction of the first n documents; every source text is still "
                   "segmented and scanned for mentions.")
        out.append("")
        out.append(markdown_table(("documents", "seconds", "quads", "ok"), build["curve"]))
    out += ["", "Plots: `latest.png` (req/s per kind), `scaling.png` (latency against store "
            "size), `build.png` (build time against documents).", ""]
    return "\n".join(out)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def _paired_table(size: dict[str, Any]) -> str:
    rows = []
    for kind, entry in size.get("paired", {}).get("kinds", {}).items():
        rows.append({
            "kind": kind,
            "oxigraph req/s": _rate(entry.get("oxigraph_median")),
            "kg req/s": _rate(entry.get("kg_median")),
            "× oxigraph (median)": _fmt(entry.get("ratios_median")),
            "rounds": ", ".join(f"{r:.2f}" for r in entry.get("ratios") or []),
            "errors": "; ".join(entry.get("errors") or []) or "0",
        })
    if not rows:
        return ""
    return _long_table(("kind", "oxigraph req/s", "kg req/s", "× oxigraph (median)", "rounds",
                        "errors"), rows)


def _long_table(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in columns)
                     + " |")
    return "\n".join(lines)


def _growth_detail(stream: dict[str, Any]) -> str:
    """Which processes grew by 1 MB or more (the sampler's per-process peaks), if any."""
    grown = stream.get("rss_growth_by_process_mb") or {}
    if not grown:
        return ""
    return " (" + ", ".join(f"{name} +{mb} MB" for name, mb in grown.items()) + ")"


def _server_table(size: dict[str, Any]) -> str:
    rows = []
    loads = {ld["tool"]: ld for ld in size.get("loads", [])}
    for name, info in size.get("servers", {}).items():
        st = info.get("stream", {})
        cond = info.get("conditional", {})
        rows.append({
            "server": name,
            "start s": info.get("started_in_s"),
            "RSS idle MB": info.get("rss_idle_mb"),
            "RSS peak MB": info.get("rss_peak_wrk_mb"),
            "stream rows": st.get("rows_requested"),
            "stream status": st.get("status"),
            "first byte ms": st.get("ttfb_ms"),
            "stream total s": st.get("total_s"),
            "stream RSS growth MB": st.get("rss_growth_mb"),
            "ETag/304": (f"{'ETag' if cond.get('etag') else 'no ETag'}"
                         f"/{cond.get('if_none_match_status') or '—'}") if cond else None,
            "note": info.get("skipped") or (info.get("error", "")[:80] or None),
        })
    load_text = "; ".join(f"{t}: {ld['quads_per_second']:,} quads/s ({ld['seconds']} s)"
                          for t, ld in loads.items())
    return markdown_table(list(rows[0].keys()) if rows else ["server"], rows) + (
        f"\n\nBulk load: {load_text}." if load_text else "")


def _competency_table(size: dict[str, Any]) -> str:
    servers = {n: i.get("competency_latency") for n, i in size.get("servers", {}).items()
               if i.get("competency_latency")}
    if not servers:
        return ""
    names = sorted({q for lat in servers.values() for q in lat})
    rows = []
    for q in names:
        row: dict[str, Any] = {"query": q}
        for server, lat in servers.items():
            entry = lat.get(q, {})
            row[server] = entry.get("median_ms") if entry.get("status") == 200 else (
                f"HTTP {entry.get('status')}" if entry else None)
        rows.append(row)
    return markdown_table(["query", *servers], rows)


# --- plots -----------------------------------------------------------------------------------

def plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    sizes = main_sizes(results)
    if sizes:
        fig, axes = plt.subplots(len(sizes), 1, figsize=(11, 3.6 * len(sizes)), squeeze=False)
        for ax, size in zip(axes[:, 0], sizes, strict=True):
            rows = _rows(size)
            servers = list(dict.fromkeys(r["server"] for r in rows))
            labels = list(dict.fromkeys(f"{r['kind']}\n{r['mode']}" for r in rows))
            width = 0.8 / max(1, len(servers))
            for i, server in enumerate(servers):
                values = []
                for label in labels:
                    kind, mode = label.split("\n")
                    values.append(_rps(size, server, kind, mode) or 0)
                ax.bar([x + i * width for x in range(len(labels))], values, width, label=server)
            ax.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(labels))])
            ax.set_xticklabels(labels, fontsize=8)
            ax.set_yscale("symlog", linthresh=1)
            ax.set_ylabel("requests/s (log)")
            ax.set_title(f"store {size['size']}: {size['quads']:,} quads")
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / "latest.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    sizes = results.get("sizes", [])
    if len(sizes) > 1:
        kinds = list(dict.fromkeys(r["kind"] for s in sizes for r in _rows(s)))
        fig, axes = plt.subplots(1, len(kinds), figsize=(3.6 * len(kinds), 3.6), squeeze=False)
        for ax, kind in zip(axes[0], kinds, strict=True):
            servers = list(dict.fromkeys(r["server"] for s in sizes for r in _rows(s)))
            for server in servers:
                for mode, style in (("cold", "-o"), ("warm", "--x")):
                    xs, ys = [], []
                    for size in sorted(sizes, key=lambda s: s["quads"]):
                        for r in _rows(size):
                            if (r["server"], r["kind"], r["mode"]) == (server, kind, mode) \
                                    and r.get("p50_ms") and r.get("requests"):
                                xs.append(size["quads"])
                                ys.append(r["p50_ms"])
                    if xs:
                        ax.plot(xs, ys, style, label=f"{server} {mode}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("store size (quads)")
            ax.set_ylabel("p50 latency (ms)")
            ax.set_title(kind)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "scaling.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    curve = [p for p in results.get("build", {}).get("curve", []) if p.get("ok")]
    if curve:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([p["documents"] for p in curve], [p["seconds"] for p in curve], "-o")
        ax.set_xlabel("documents with curated extraction (of 5 sources)")
        ax.set_ylabel("`kg build` wall time (s)")
        ax.set_ylim(bottom=0)
        fig.tight_layout()
        path = out_dir / "build.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """latest.json first (its path is returned first), then latest.md and the plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results["targets"] = targets(results)
    for size in results.get("sizes", []):
        size["table"] = table_rows(size)
    json_path = out_dir / "latest.json"
    json_path.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    md_path = out_dir / "latest.md"
    md_path.write_text(markdown(results), encoding="utf-8")
    return [json_path, md_path, *plots(results, out_dir)]


def main() -> None:
    """Re-render latest.md and the plots from a results JSON: python -m bench.report [FILE]."""
    import sys
    default = Path(__file__).parent / "results" / "latest.json"
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    results = json.loads(path.read_text(encoding="utf-8"))
    for written in write(results, path.parent):
        print(written)


if __name__ == "__main__":
    main()
