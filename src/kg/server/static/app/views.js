/* The picture views: each runs the competency query shown on its page against /sparql and
 * draws it (vis-timeline, vis-network, an HTML table). Labels reach the page as text only:
 * vis items get DOM elements (never HTML strings), network labels are drawn on a canvas. */
(function () {
  "use strict";

  const KG = window.KG;
  const $ = (id) => document.getElementById(id);
  const page = document.body.dataset.page;
  const query = $("view-query").textContent;

  const local = (iri) => iri.replace(/^.*[#/]/, "");
  const text = (term) => (term ? term.value : "");

  function status(message) { $("status").textContent = message; }

  function failed(err) {
    const problem = (err && err.problem) || {};
    status("Could not load the data: " + (problem.detail || problem.title || err.message || String(err)));
    $("status").classList.add("error");
  }

  /** Entity IRIs become links to their pages on this site. */
  function link(iri, label) {
    const a = KG.el("a", { href: KG.href(iri), text: label || iri });
    a.title = iri;
    return a;
  }

  /* ---------- timeline ---------- */
  function timeline(rows) {
    const groups = [];
    const groupIds = new Map();
    const items = [];
    const targets = new Map();
    rows.forEach((row, i) => {
      const start = KG.toDate(text(row.date));
      if (!start) return;
      const kind = text(row.kind) || "event";
      if (!groupIds.has(kind)) {
        groupIds.set(kind, groups.length);
        groups.push({ id: groups.length, content: KG.el("span", { text: kind }) });
      }
      const content = KG.el("span", { class: "tl-item" }, KG.el("span", { text: text(row.label) }));
      content.title = text(row.label) + " — " + kind + " " + text(row.date);
      items.push({ id: i, start, content, group: groupIds.get(kind), type: "point" });
      targets.set(i, row.what && row.what.value);
    });
    const container = $("view");
    if (!items.length) { status("The query returned no dated rows."); return; }
    const years = items.map((it) => it.start.getUTCFullYear());
    const min = new Date(Date.UTC(Math.min(...years), 0, 1));
    const max = new Date(Date.UTC(Math.max(...years) + 1, 0, 1));
    const span = max - min;
    const tl = new window.vis.Timeline(container, items, groups, {
      start: new Date(min - span * 0.03), end: new Date(max.getTime() + span * 0.12), stack: true, zoomKey: "ctrlKey", orientation: "top",
      margin: { item: 4 }, maxHeight: 640,
    });
    tl.on("select", (props) => {
      const iri = targets.get(props.items[0]);
      if (iri) window.location.href = KG.href(iri);
    });
    status(items.length + " dated rows from " + min.getUTCFullYear() + " to " + (max.getUTCFullYear() - 1) + ". Click an item to open its page; Ctrl + scroll to zoom.");
    listing(["date", "label", "kind"], rows.map((r) => [text(r.date), r.what ? link(r.what.value, text(r.label)) : text(r.label), text(r.kind)]));
  }

  /* ---------- network ---------- */
  const GROUP_OF = { programme: "programme", initiative: "programme", mechanism: "dialogue",
    org: "organisation", body: "organisation", mil: "military", doc: "document",
    gov: "government", eu: "EU body" };
  const PALETTE = ["#1f5fa8", "#2e8540", "#7b3fa0", "#b45f06", "#a8325e", "#2a8a8a", "#6b6b2a",
    "#c0392b", "#555555", "#17607d", "#8c564b", "#d62790", "#7f7f7f", "#bcbd22"];
  const colours = new Map();
  const colour = (kind) => {
    if (!colours.has(kind)) colours.set(kind, PALETTE[colours.size % PALETTE.length]);
    return colours.get(kind);
  };

  function kindOf(iri) {
    if (!iri.startsWith(KG.baseIri)) return "other";
    const segment = iri.slice(KG.baseIri.length).split("/")[1] || "other";
    return GROUP_OF[segment] || segment;
  }

  function network(rows) {
    const nodes = new Map();
    const edges = [];
    const addNode = (iri, label) => {
      if (!nodes.has(iri)) {
        const title = KG.el("div", {}, KG.el("strong", { text: label }), KG.el("br"), KG.el("span", { text: kindOf(iri) }));
        const kind = kindOf(iri);
        const c = colour(kind);
        nodes.set(iri, { id: iri, label, kind, title, color: { background: c, border: c, highlight: { background: c, border: "#000" } } });
      }
    };
    for (const row of rows) {
      if (!row.source || !row.target) continue;
      addNode(row.source.value, text(row.sourceLabel) || local(row.source.value));
      addNode(row.target.value, text(row.targetLabel) || local(row.target.value));
      edges.push({ from: row.source.value, to: row.target.value, label: local(text(row.relation)), arrows: "to" });
    }
    if (!nodes.size) { status("The query returned no links."); return; }
    const container = $("view");
    const net = new window.vis.Network(container,
      { nodes: new window.vis.DataSet([...nodes.values()]), edges: new window.vis.DataSet(edges) },
      {
        nodes: { shape: "dot", size: 12, font: { size: 13 } },
        edges: { font: { size: 10, align: "middle", color: "#666" }, color: { color: "#9aa7b8" }, smooth: { type: "dynamic" } },
        physics: { stabilization: { iterations: 300 }, barnesHut: { springLength: 140 } },
        interaction: { hover: true, tooltipDelay: 150 },
        layout: { improvedLayout: nodes.size <= 100 },
      });
    const panel = KG.el("p", { id: "selection", class: "selection" });
    container.after(panel);
    const kindsShown = [...new Set([...nodes.values()].map((n) => n.kind))].sort();
    const legend = KG.el("p", { class: "legend" }, KG.el("span", { text: "Kinds: " }));
    for (const kind of kindsShown) {
      const swatch = KG.el("span", { class: "swatch" });
      swatch.style.background = colour(kind);
      legend.append(KG.el("span", { class: "legend-item" }, swatch, KG.el("span", { text: kind })));
    }
    container.before(legend);
    net.on("click", (params) => {
      const iri = params.nodes[0];
      if (!iri) { panel.replaceChildren(); return; }
      const node = nodes.get(iri);
      panel.replaceChildren(KG.el("span", { text: "Selected " + node.kind + ": " }), link(iri, node.label), KG.el("span", { text: " (double-click a node to open its page)" }));
    });
    net.on("doubleClick", (params) => {
      if (params.nodes[0]) window.location.href = KG.href(params.nodes[0]);
    });
    net.once("stabilizationIterationsDone", () => net.fit());
    status(nodes.size + " nodes and " + edges.length + " links. Click a node for its link; double-click to open its page.");
    listing(["source", "relation", "target"], rows.map((r) => [link(r.source.value, text(r.sourceLabel)), local(text(r.relation)), link(r.target.value, text(r.targetLabel))]));
  }

  /* ---------- matrix ---------- */
  function matrix(rows) {
    const areas = [...new Set(rows.map((r) => text(r.area)))].sort((a, b) => a.localeCompare(b));
    const paragraphs = [...new Set(rows.map((r) => text(r.paragraph)))]
      .sort((a, b) => (Number(a) - Number(b)) || a.localeCompare(b));
    if (!areas.length) { status("The query returned no commitments."); return; }
    const cells = new Map(rows.map((r) => [text(r.area) + "\u0000" + text(r.paragraph), text(r.modalities)]));
    const modalities = [...new Set(rows.flatMap((r) => text(r.modalities).split(" | ")).filter(Boolean))].sort();
    const classOf = (m) => "modality m" + (modalities.indexOf(m) % 8);
    const table = KG.el("table", { class: "matrix" });
    const head = KG.el("tr", {}, KG.el("th", { scope: "col", text: "Cooperation area \\ paragraph" }));
    for (const p of paragraphs) head.append(KG.el("th", { scope: "col", text: "¶ " + p }));
    table.append(KG.el("thead", {}, head));
    const body = KG.el("tbody");
    for (const area of areas) {
      const tr = KG.el("tr", {}, KG.el("th", { scope: "row", text: area }));
      for (const p of paragraphs) {
        const value = cells.get(area + "\u0000" + p);
        const td = KG.el("td");
        if (value !== undefined) {
          const parts = value ? value.split(" | ") : ["(no modality)"];
          for (const m of parts) td.append(KG.el("span", { class: classOf(m), text: m }));
          td.title = area + ", paragraph " + p + ": " + (value || "no modality recorded");
          td.className = "filled";
        }
        tr.append(td);
      }
      body.append(tr);
    }
    table.append(body);
    const legend = KG.el("p", { class: "legend" }, KG.el("span", { text: "Modalities: " }),
      ...modalities.map((m) => KG.el("span", { class: classOf(m), text: m })));
    $("view").replaceChildren(legend, KG.el("div", { class: "matrix-scroll" }, table));
    status(areas.length + " cooperation areas × " + paragraphs.length + " paragraphs (" + rows.length + " filled cells).");
  }

  /** The rows as a plain table under the picture: readable without the canvas, and linkable. */
  function listing(headers, rows) {
    const details = KG.el("details", { class: "listing" }, KG.el("summary", { text: "The data as a table (" + rows.length + " rows)" }));
    const table = KG.el("table", { class: "results" });
    table.append(KG.el("thead", {}, KG.el("tr", {}, ...headers.map((h) => KG.el("th", { scope: "col", text: h })))));
    const body = KG.el("tbody");
    for (const row of rows) body.append(KG.el("tr", {}, ...row.map((c) => KG.el("td", {}, c))));
    table.append(body);
    details.append(table);
    $("view").after(details);
  }

  const draw = { "view-timeline": timeline, "view-network": network, "view-matrix": matrix }[page];
  KG.select(query)
    .then((data) => draw((data.results && data.results.bindings) || []))
    .catch(failed);
})();
