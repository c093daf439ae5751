/* The query workbench: YASQE editor (completion from this server only), competency queries,
 * results table with links to entity pages, a chart, downloads and shareable links.
 * Results are rendered here (not by YASR) so that every value goes through textContent and
 * entity IRIs under the base IRI link to this site's pages. */
(function () {
  "use strict";

  const KG = window.KG;
  const Yasqe = window.Yasgui.Yasqe;
  const $ = (id) => document.getElementById(id);
  const ROW_PAGE = 500;
  const SELECT_FORMATS = [["json", "JSON"], ["xml", "XML"], ["csv", "CSV"], ["tsv", "TSV"]];
  const ASK_FORMATS = [["json", "JSON"], ["xml", "XML"]];
  const GRAPH_FORMATS = [["ttl", "Turtle"], ["nt", "N-Triples"], ["nq", "N-Quads"],
    ["trig", "TriG"], ["rdfxml", "RDF/XML"], ["jsonld", "JSON-LD"]];
  const EXTENSIONS = { json: "srj", xml: "srx", csv: "csv", tsv: "tsv", ttl: "ttl", nt: "nt",
    nq: "nq", trig: "trig", rdfxml: "rdf", jsonld: "jsonld" };

  let serverPrefixes = {};
  const termsPromise = fetch(KG.root + "/workbench/terms.json")
    .then((r) => (r.ok ? r.json() : { classes: [], properties: [] }))
    .catch(() => ({ classes: [], properties: [] }));
  const prefixesPromise = fetch(KG.root + "/workbench/prefixes.json")
    .then((r) => (r.ok ? r.json() : {}))
    .then((p) => { serverPrefixes = p; return p; })
    .catch(() => ({}));

  // Completion: prefixes from our own route (not prefix.cc), classes and properties from the
  // ontology in the store (not LOV). Nothing is cached in localStorage: the ontology may change.
  const noStorage = () => undefined;
  // Queries here declare relative namespaces (PREFIX kg: <ontology#>) that the server resolves
  // against its base IRI; resolve them the same way before matching full term IRIs.
  const resolve = (iri) => (iri && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(iri) ? new URL(iri, KG.baseIri).toString() : iri);
  function termToken(name) {
    const base = Yasqe.Autocompleters[name];
    return (yq, token) => {
      const t = base.preProcessToken(yq, token);
      if (t.tokenPrefixUri) t.tokenPrefixUri = resolve(t.tokenPrefixUri);
      if (t.autocompletionString !== undefined && (t.tokenPrefixUri || t.string.trim().startsWith("<"))) {
        t.autocompletionString = resolve(t.autocompletionString);
      }
      return t;
    };
  }
  Yasqe.forkAutocompleter("prefixes", { name: "kgPrefixes", persistenceId: noStorage }, false);
  Yasqe.forkAutocompleter("class", {
    name: "kgClass", bulk: true, autoShow: true, persistenceId: noStorage,
    preProcessToken: termToken("class"),
    get: () => termsPromise.then((t) => t.classes || []),
  }, false);
  Yasqe.forkAutocompleter("property", {
    name: "kgProperty", bulk: true, autoShow: true, persistenceId: noStorage,
    preProcessToken: termToken("property"),
    get: () => termsPromise.then((t) => t.properties || []),
  }, false);

  const yasqe = new Yasqe($("editor"), {
    persistenceId: "kg-workbench-query",
    showQueryButton: false,
    consumeShareLink: null,
    createShareableLink: null,
    createShortLink: null,
    prefixCcApi: KG.root + "/workbench/prefixes.json",
    autocompleters: ["kgPrefixes", "variables", "kgClass", "kgProperty"],
    requestConfig: { endpoint: KG.root + "/sparql", method: "POST" },
    value: (document.querySelector("button.example") || { dataset: { query: "" } }).dataset.query,
    editorHeight: "340px",
    resizeable: true,
    extraKeys: {
      "Ctrl-Enter": () => run(),
      "Cmd-Enter": () => run(),
      "Ctrl-Space": (cm) => cm.autocomplete(),
      "Shift-Ctrl-F": (cm) => cm.autoformat && cm.autoformat(),
    },
  });
  // YASQE's own runner (and any button it draws) goes through ours.
  yasqe.query = () => { run(); return Promise.resolve(); };
  window.kgYasqe = yasqe; // for tests and curious users

  /* ---------- server errors shown in the editor ---------- */
  let errorMarks = [];
  function clearEditorError() {
    for (const clear of errorMarks) clear();
    errorMarks = [];
    $("error").hidden = true;
    $("error").replaceChildren();
  }

  function showError(err) {
    clearEditorError();
    const box = $("error");
    const problem = (err && err.problem) || {};
    const title = problem.title || (err.status ? "HTTP " + err.status : "Request failed");
    const detail = problem.detail || (err && err.message) || "";
    box.append(KG.el("strong", { text: title }), document.createTextNode(": " + detail));
    box.hidden = false;
    const pos = err && err.position;
    if (!pos) return;
    const lineCount = yasqe.lineCount();
    const line = Math.min(Math.max(pos.line - 1, 0), lineCount - 1);
    const text = yasqe.getLine(line) || "";
    const ch = Math.min(Math.max(pos.column - 1, 0), text.length);
    const loc = KG.el("span", { class: "where", text: " (line " + (line + 1) + ", column " + (ch + 1) + ")" });
    box.append(loc);
    const handle = yasqe.addLineClass(line, "background", "kg-error-line");
    const mark = yasqe.markText({ line, ch: Math.max(ch - (ch === text.length ? 1 : 0), 0) },
      { line, ch: Math.min(ch + 1, text.length) || ch + 1 }, { className: "kg-error-mark" });
    const widgetNode = KG.el("div", { class: "kg-error-widget", role: "note" },
      KG.el("span", { class: "arrow", text: " ".repeat(ch) + "^ " }),
      KG.el("span", { text: detail }));
    const widget = yasqe.addLineWidget(line, widgetNode, { coverGutter: false, noHScroll: true });
    errorMarks.push(() => yasqe.removeLineClass(handle, "background", "kg-error-line"),
      () => mark.clear(), () => widget.clear());
    yasqe.setCursor({ line, ch });
    yasqe.scrollIntoView({ line, ch }, 60);
  }
  yasqe.on("change", () => { if (errorMarks.length) clearEditorError(); });

  /* ---------- running ---------- */
  function queryKind() {
    const type = (yasqe.getQueryType && yasqe.getQueryType()) || "SELECT";
    if (yasqe.getQueryMode && yasqe.getQueryMode() === "update") return "update";
    if (type === "CONSTRUCT" || type === "DESCRIBE") return "graph";
    return type === "ASK" ? "ask" : "select";
  }

  function shareUrl(query) {
    const url = new URL(window.location.href);
    url.search = "";
    url.hash = "query=" + encodeURIComponent(query);
    return url.toString();
  }

  function setStatus(text) { $("status").textContent = text; }

  let running = 0;
  async function run() {
    const query = yasqe.getValue();
    if (!query.trim()) return;
    const ticket = ++running;
    clearEditorError();
    const kind = queryKind();
    history.replaceState(null, "", shareUrl(query));
    $("share-link").href = shareUrl(query);
    setStatus("Running…");
    $("run").disabled = true;
    const started = performance.now();
    try {
      const accept = kind === "graph" ? "text/turtle" : "application/sparql-results+json";
      const response = await KG.sparql(query, accept);
      const payload = kind === "graph" ? await response.text() : await response.json();
      if (ticket !== running) return;
      const ms = Math.round(performance.now() - started);
      await prefixesPromise;
      render(kind, payload, query, ms);
    } catch (err) {
      if (ticket !== running) return;
      setStatus("");
      $("results-area").hidden = true;
      $("downloads").hidden = true;
      showError(err instanceof KG.SparqlError ? err : { message: String(err) });
    } finally {
      if (ticket === running) $("run").disabled = false;
    }
  }

  /* ---------- results ---------- */
  let current = null; // {vars, rows, prefixes}
  let chart = null;

  function render(kind, payload, query, ms) {
    renderDownloads(kind, query);
    $("results-area").hidden = false;
    $("table-filter").value = "";
    const raw = $("raw");
    if (kind === "graph") {
      const triples = payload.split("\n").filter((l) => l.trim() && !l.startsWith("@prefix")).length;
      setStatus("Graph returned (" + ms + " ms).");
      $("tab-table").replaceChildren(KG.el("pre", { class: "graph", text: payload || "(empty graph)" }));
      raw.textContent = payload;
      showChartTab(false);
      $("tab-table").dataset.lines = String(triples);
      selectTab("table");
      return;
    }
    raw.textContent = JSON.stringify(payload, null, 2).slice(0, 200000);
    if (kind === "ask" || typeof payload.boolean === "boolean") {
      setStatus("ASK answered in " + ms + " ms.");
      $("tab-table").replaceChildren(KG.el("p", { class: "ask-answer", text: String(payload.boolean) }));
      showChartTab(false);
      selectTab("table");
      return;
    }
    const vars = (payload.head && payload.head.vars) || [];
    const rows = (payload.results && payload.results.bindings) || [];
    const prefixes = { ...serverPrefixes, ...(yasqe.getPrefixesFromQuery() || {}) };
    current = { vars, rows, prefixes, shown: ROW_PAGE, sortBy: null, sortDir: 1, filter: "" };
    setStatus(rows.length + (rows.length === 1 ? " row" : " rows") + " in " + ms + " ms.");
    drawTable();
    const chartable = drawChart();
    showChartTab(chartable);
    selectTab("table");
  }

  function visibleRows() {
    let rows = current.rows;
    if (current.filter) {
      const needle = current.filter.toLowerCase();
      rows = rows.filter((row) => current.vars.some((v) =>
        KG.termText(row[v], current.prefixes).toLowerCase().includes(needle)));
    }
    if (current.sortBy) {
      const v = current.sortBy;
      const key = (row) => {
        const t = row[v];
        if (!t) return null;
        return KG.isNumeric(t) ? Number(t.value) : KG.termText(t, current.prefixes).toLowerCase();
      };
      rows = [...rows].sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === y) return 0;
        if (x === null) return 1;
        if (y === null) return -1;
        return (x < y ? -1 : 1) * current.sortDir;
      });
    }
    return rows;
  }

  function drawTable() {
    const rows = visibleRows();
    const table = KG.el("table", { class: "results" });
    const head = KG.el("tr", {}, KG.el("th", { class: "rownum", text: "#" }));
    for (const v of current.vars) {
      const arrow = current.sortBy === v ? (current.sortDir > 0 ? " ▲" : " ▼") : "";
      const th = KG.el("th", { scope: "col", title: "Sort by ?" + v }, KG.el("button", { type: "button", text: "?" + v + arrow }));
      th.firstChild.addEventListener("click", () => {
        current.sortDir = current.sortBy === v ? -current.sortDir : 1;
        current.sortBy = v;
        drawTable();
      });
      head.append(th);
    }
    table.append(KG.el("thead", {}, head));
    const tbody = KG.el("tbody");
    rows.slice(0, current.shown).forEach((row, i) => {
      const tr = KG.el("tr", {}, KG.el("td", { class: "rownum", text: String(i + 1) }));
      for (const v of current.vars) {
        const td = KG.el("td", {}, KG.termNode(row[v], current.prefixes));
        if (KG.isNumeric(row[v])) td.className = "num";
        tr.append(td);
      }
      tbody.append(tr);
    });
    table.append(tbody);
    const parts = [table];
    if (!rows.length) parts.unshift(KG.el("p", { class: "empty", text: "No rows." }));
    if (rows.length > current.shown) {
      const more = KG.el("button", { type: "button", class: "more", text: "Show " + Math.min(ROW_PAGE, rows.length - current.shown) + " more of " + (rows.length - current.shown) + " remaining rows" });
      more.addEventListener("click", () => { current.shown += ROW_PAGE; drawTable(); });
      parts.push(more);
    }
    $("tab-table").replaceChildren(...parts);
  }

  $("table-filter").addEventListener("input", (e) => {
    if (!current) return;
    current.filter = e.target.value;
    current.shown = ROW_PAGE;
    drawTable();
  });

  /** A bar chart of numeric columns by the first label column, or of rows per year by a date
   * column. Returns whether the result was chartable. */
  function drawChart() {
    if (chart) { chart.destroy(); chart = null; }
    const { vars, rows, prefixes } = current;
    if (!rows.length || !window.Chart) return false;
    const every = (v, pred) => rows.every((r) => !r[v] || pred(r[v])) && rows.some((r) => r[v]);
    const numeric = vars.filter((v) => every(v, KG.isNumeric));
    const dates = vars.filter((v) => every(v, KG.isDate));
    // Bars are labelled by up to two text columns (labels read better than IRIs).
    const others = vars.filter((v) => !numeric.includes(v) && !dates.includes(v));
    const texts = others.filter((v) => rows.every((r) => !r[v] || r[v].type === "literal"));
    const labelVars = (texts.length ? texts : others).slice(0, 2);
    const labelVar = labelVars.map((v) => "?" + v).join(" · ").slice(1);
    let config = null;
    let note = "";
    if (numeric.length && labelVars.length && rows.length <= 200) {
      const labels = rows.map((r) => labelVars.map((v) => KG.termText(r[v], prefixes)).filter(Boolean).join(" · "));
      config = {
        type: "bar",
        data: { labels, datasets: numeric.slice(0, 4).map((v) => ({ label: "?" + v, data: rows.map((r) => (r[v] ? Number(r[v].value) : null)) })) },
        options: { indexAxis: rows.length > 12 ? "y" : "x", responsive: true, maintainAspectRatio: false, animation: false },
      };
      note = numeric.slice(0, 4).map((v) => "?" + v).join(", ") + " by ?" + labelVar + ".";
    } else if (dates.length) {
      const v = dates[0];
      const counts = new Map();
      for (const r of rows) {
        const d = r[v] && KG.toDate(r[v].value);
        if (d) counts.set(d.getUTCFullYear(), (counts.get(d.getUTCFullYear()) || 0) + 1);
      }
      if (!counts.size) return false;
      const years = [...counts.keys()];
      const labels = [];
      for (let y = Math.min(...years); y <= Math.max(...years); y++) labels.push(String(y));
      config = {
        type: "bar",
        data: { labels, datasets: [{ label: "rows per year of ?" + v, data: labels.map((y) => counts.get(Number(y)) || 0) }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false },
      };
      note = "Rows per year of ?" + v + ".";
    }
    if (!config) return false;
    const canvas = $("chart");
    canvas.parentElement.style.height = Math.max(320, config.options.indexAxis === "y" ? rows.length * 22 : 0) + "px";
    chart = new window.Chart(canvas, config);
    $("chart-note").textContent = note;
    return true;
  }

  function showChartTab(show) {
    document.querySelector('[data-tab="chart"]').hidden = !show;
  }

  function selectTab(name) {
    for (const tab of document.querySelectorAll(".wb-tabs [data-tab]")) {
      const on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(on));
      $("tab-" + tab.dataset.tab).hidden = !on;
    }
    $("table-filter").hidden = name !== "table" || !current;
    if (name === "chart" && chart) chart.resize();
  }
  for (const tab of document.querySelectorAll(".wb-tabs [data-tab]")) {
    tab.addEventListener("click", () => selectTab(tab.dataset.tab));
  }

  function renderDownloads(kind, query) {
    const box = $("downloads");
    const formats = kind === "graph" ? GRAPH_FORMATS : kind === "ask" ? ASK_FORMATS : SELECT_FORMATS;
    const links = formats.map(([fmt, label]) => {
      const params = new URLSearchParams({ query, format: fmt });
      return KG.el("a", { href: KG.root + "/sparql?" + params.toString(), download: "result." + EXTENSIONS[fmt], "data-format": fmt, text: label });
    });
    box.replaceChildren(KG.el("span", { text: "Download: " }), ...links);
    box.hidden = false;
  }

  /* ---------- examples, share links, start-up ---------- */
  function load(query, andRun) {
    yasqe.setValue(query);
    yasqe.clearHistory && yasqe.clearHistory();
    if (andRun) run();
  }

  for (const button of document.querySelectorAll("button.example")) {
    button.addEventListener("click", () => {
      for (const b of document.querySelectorAll("button.example.active")) b.classList.remove("active");
      button.classList.add("active");
      load(button.dataset.query, true);
    });
  }
  $("example-filter").addEventListener("input", (e) => {
    const needle = e.target.value.toLowerCase();
    for (const li of $("examples").children) {
      const b = li.firstElementChild;
      li.hidden = !!needle && !(b.textContent + " " + b.dataset.name).toLowerCase().includes(needle);
    }
  });

  $("run").addEventListener("click", () => run());
  $("share").addEventListener("click", async () => {
    const url = shareUrl(yasqe.getValue());
    const link = $("share-link");
    link.href = url;
    link.textContent = "link to this query";
    link.hidden = false;
    try {
      await navigator.clipboard.writeText(url);
      setStatus("Link copied to the clipboard.");
    } catch (e) {
      setStatus("Copy the link:");
    }
  });

  function sharedQuery() {
    const hash = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    if (hash.get("query")) return hash.get("query");
    const search = new URLSearchParams(window.location.search);
    return search.get("query");
  }

  window.addEventListener("hashchange", () => {
    const q = sharedQuery();
    if (q && q !== yasqe.getValue()) load(q, true);
  });

  const shared = sharedQuery();
  if (shared) {
    load(shared, true);
  }
  selectTab("table");
})();
