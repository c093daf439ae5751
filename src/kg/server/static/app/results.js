/* Shared helpers for the workbench and the views: talking to /sparql and turning SPARQL JSON
 * terms into DOM nodes. Data only ever reaches the page through textContent and attributes,
 * never as HTML strings: labels and quotes in the graph may hold markup. */
(function () {
  "use strict";

  const body = document.body;
  const root = body.dataset.root || "";
  const baseIri = body.dataset.baseIri || "";
  const XSD = "http://www.w3.org/2001/XMLSchema#";
  const NUMERIC = new Set(["integer", "decimal", "double", "float", "int", "long", "short",
    "nonNegativeInteger", "positiveInteger", "nonPositiveInteger", "negativeInteger",
    "unsignedInt", "unsignedLong"].map((t) => XSD + t));
  const DATES = new Set(["date", "dateTime", "gYear", "gYearMonth"].map((t) => XSD + t));

  /** The link to follow for an IRI: this site for IRIs under the base IRI, else the IRI. */
  function href(iri) {
    if (baseIri && iri.startsWith(baseIri)) return root + "/" + iri.slice(baseIri.length);
    return iri;
  }

  /** Shorten an IRI with the longest matching prefix ({prefix: namespace}). */
  function compact(iri, prefixes) {
    let best = null;
    for (const [prefix, raw] of Object.entries(prefixes || {})) {
      const ns = absolute(raw);
      if (ns && iri.startsWith(ns) && (!best || ns.length > best[1].length)) best = [prefix, ns];
    }
    if (!best) return null;
    const local = iri.slice(best[1].length);
    // For display: '/' is allowed in the local part (id:agreement/spa reads better than the IRI).
    return /^[A-Za-z0-9_\-.%/]*$/.test(local) && !local.endsWith(".") ? best[0] + ":" + local : null;
  }

  /** Namespaces in queries may be relative (<ontology#>): the server resolves them on the base. */
  function absolute(ns) {
    if (!ns || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(ns) || !baseIri) return ns;
    try { return new URL(ns, baseIri).toString(); } catch (e) { return ns; }
  }

  /** A DOM node for one SPARQL JSON term (a link for IRIs, text for literals). */
  function termNode(term, prefixes) {
    if (!term) return document.createTextNode("");
    if (term.type === "uri") {
      const a = document.createElement("a");
      a.href = href(term.value);
      a.className = term.value.startsWith(baseIri) ? "iri local" : "iri external";
      a.textContent = compact(term.value, prefixes) || term.value;
      a.title = term.value;
      if (!term.value.startsWith(baseIri)) a.rel = "noopener noreferrer";
      return a;
    }
    if (term.type === "bnode") {
      const span = document.createElement("span");
      span.className = "bnode";
      span.textContent = "_:" + term.value;
      return span;
    }
    const span = document.createElement("span");
    span.className = "literal";
    span.textContent = term.value;
    if (term["xml:lang"]) {
      const lang = document.createElement("sup");
      lang.className = "lang";
      lang.textContent = "@" + term["xml:lang"];
      const wrap = document.createElement("span");
      wrap.append(span, lang);
      return wrap;
    }
    if (term.datatype) span.title = compact(term.datatype, { xsd: XSD }) || term.datatype;
    return span;
  }

  function isNumeric(term) {
    return !!term && term.type !== "uri" && NUMERIC.has(term.datatype);
  }

  function isDate(term) {
    return !!term && term.type !== "uri" && DATES.has(term.datatype);
  }

  /** A JS Date for an xsd:date/dateTime/gYear/gYearMonth literal (null when unparseable). */
  function toDate(value) {
    const m = /^(-?\d{4})(?:-(\d{2}))?(?:-(\d{2}))?/.exec(value || "");
    if (!m) return null;
    const date = new Date(Date.UTC(Number(m[1]), m[2] ? Number(m[2]) - 1 : 0, m[3] ? Number(m[3]) : 1));
    return Number.isNaN(date.getTime()) ? null : date;
  }

  /** Where in the query a server error points: {line, column} (1-based) or null. */
  function errorPosition(problem) {
    if (problem && Number.isInteger(problem.line)) {
      return { line: problem.line, column: Number.isInteger(problem.column) ? problem.column : 1 };
    }
    const text = (problem && (problem.detail || problem.title)) || "";
    let m = /line\s+(\d+)\D{0,20}?col(?:umn)?\s+(\d+)/i.exec(text);
    if (!m) m = /\bat\s+(\d+):(\d+)/.exec(text);
    if (!m) m = /\b(\d+):(\d+)\b/.exec(text);
    return m ? { line: Number(m[1]), column: Number(m[2]) } : null;
  }

  /** An Error carrying the server's problem (RFC 9457 body, or its text). */
  class SparqlError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem || {};
      this.position = errorPosition(problem);
    }
  }

  async function readProblem(response) {
    const type = response.headers.get("content-type") || "";
    const text = await response.text();
    if (type.includes("json")) {
      try {
        return JSON.parse(text);
      } catch (e) { /* fall through to text */ }
    }
    return { title: response.statusText || "Error", detail: text.trim() };
  }

  /** Run a query at /sparql (POST form, so long queries fit) and return the Response. */
  async function sparql(query, accept) {
    const response = await fetch(root + "/sparql", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: accept },
      body: new URLSearchParams({ query: query }),
    });
    if (!response.ok) throw new SparqlError(response.status, await readProblem(response));
    return response;
  }

  async function select(query) {
    const response = await sparql(query, "application/sparql-results+json");
    return response.json();
  }

  /** The display text of a term (for charts, tooltips, sorting). */
  function termText(term, prefixes) {
    if (!term) return "";
    if (term.type === "uri") return compact(term.value, prefixes) || term.value;
    return term.value;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  }

  window.KG = { root, baseIri, XSD, href, compact, termNode, termText, isNumeric, isDate, toDate,
    errorPosition, SparqlError, sparql, select, el };
})();
