"""The kg command line: build, validate, query, serve, publish, stats, export, backup, restore
(thin over kg.build and kg.store)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import pyoxigraph as ox
import typer
from rich.console import Console
from rich.table import Table

from kg.config import Settings, get_settings
from kg.errors import KgError
from kg.namespaces import kg_prefixes
from kg.sparql.results import write_solutions
from kg.sparql.worker import evaluate

app = typer.Typer(
    help="Knowledge graph of EU–Japan security and defence cooperation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

RESULT_FORMATS = {
    "json": ox.QueryResultsFormat.JSON,
    "csv": ox.QueryResultsFormat.CSV,
    "tsv": ox.QueryResultsFormat.TSV,
    "xml": ox.QueryResultsFormat.XML,
}
GRAPH_FORMATS = {
    "ttl": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
    "nq": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "jsonld": ox.RdfFormat.JSON_LD,
    "xml": ox.RdfFormat.RDF_XML,
}


def _fail(exc: KgError) -> None:
    err.print(
        f"[bold red]{exc.title}[/]: {exc.detail}", markup=True, highlight=False, soft_wrap=True
    )
    raise typer.Exit(1)


def _print_report(report: object, wrote: bool) -> None:
    from kg.build import BuildReport

    assert isinstance(report, BuildReport)
    classes = Table("class", "entities", title="Entities per class")
    for name, count in report.classes.items():
        classes.add_row(name, str(count))
    graphs = Table("graph", "quads", title="Quads per graph")
    for name, count in report.graphs.items():
        graphs.add_row(name, str(count))
    console.print(classes, graphs)
    console.print(
        f"{report.documents} documents, {report.entities} entities, "
        f"{report.claims} claims, {report.mentions} mentions, "
        f"{report.inferred} inferred, {report.quads} quads in total"
    )
    steps = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
    console.print(f"steps: {steps}")
    if wrote:
        console.print(
            f"store: {report.store_dir}; dumps: " + ", ".join(str(p) for p in report.dumps.values())
        )


def _progress() -> object:
    return lambda step: err.print(f"[dim]… {step}[/]", markup=True)


@app.command()
def build() -> None:
    """Check everything and build a new store (swapped in atomically), dumps and manifest."""
    from kg.build import build as run_build

    try:
        report = run_build(get_settings(), progress=_progress())  # type: ignore[arg-type]
    except KgError as exc:
        _fail(exc)
    _print_report(report, wrote=True)
    console.print(f"[green]built in {report.seconds:.2f}s[/]")


@app.command()
def validate() -> None:
    """Run every check of a build (quotes, ids, dates, SHACL) without writing a store."""
    from kg.build import check

    try:
        report = check(get_settings(), progress=_progress())  # type: ignore[arg-type]
    except KgError as exc:
        _fail(exc)
    _print_report(report, wrote=False)
    console.print("[green]valid[/]")


def _open_store(settings: Settings) -> ox.Store:
    if not settings.store_path.exists():
        err.print(f"no store at {settings.store_path}: run `kg build` first")
        raise typer.Exit(1)
    return ox.Store.read_only(str(settings.store_path.resolve()))


@app.command()
def query(
    sparql: Annotated[str | None, typer.Argument(help="SPARQL query text")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the query from a file")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table|json|csv|tsv|xml|ttl|nt|nq|trig|jsonld")
    ] = "table",
) -> None:
    """Run a SPARQL query against the built store (the default graph is the union of all)."""
    settings = get_settings()
    if file is not None:
        sparql = file.read_text(encoding="utf-8")
    if not sparql:
        err.print("give a query or --file")
        raise typer.Exit(2)
    store = _open_store(settings)
    try:
        result = evaluate(  # an unknown function is an expression error, as in the service
            store,
            sparql,
            settings.base_iri,
            use_default_graph_as_union=settings.union_default_graph,
            prefixes=kg_prefixes(settings.base_iri),
        )
    except SyntaxError as exc:
        err.print(f"SPARQL syntax error: {exc}")
        raise typer.Exit(1) from None
    out = sys.stdout.buffer
    if isinstance(result, ox.QueryBoolean):
        if fmt in RESULT_FORMATS:
            out.write(result.serialize(format=RESULT_FORMATS[fmt]))
        else:
            console.print(str(bool(result)).lower())
    elif isinstance(result, ox.QuerySolutions):
        if fmt in RESULT_FORMATS:  # the service's writers (pyoxigraph's CSV splits triple terms)
            write_solutions(result, fmt, out, sys.maxsize)
        elif fmt == "table":
            names = [v.value for v in result.variables]
            table = Table(*names)
            for row in result:
                table.add_row(*["" if row[n] is None else _show(row[n]) for n in names])
            console.print(table)
        else:
            err.print(f"--format {fmt} is not a results format (table|json|csv|tsv|xml)")
            raise typer.Exit(2)
    else:
        rdf = GRAPH_FORMATS.get("ttl" if fmt == "table" else fmt)
        if rdf is None:
            err.print(f"--format {fmt} is not an RDF format (ttl|nt|nq|trig|jsonld|xml)")
            raise typer.Exit(2)
        triples = list(result)
        if rdf in (ox.RdfFormat.N_QUADS, ox.RdfFormat.TRIG):
            data: list = [ox.Quad(t.subject, t.predicate, t.object) for t in triples]
        else:
            data = triples
        prefixes = (
            kg_prefixes(settings.base_iri)
            if rdf in (ox.RdfFormat.TURTLE, ox.RdfFormat.TRIG)
            else None
        )
        out.write(ox.serialize(data, format=rdf, prefixes=prefixes))
    out.flush()


def _show(term: object) -> str:
    if isinstance(term, ox.NamedNode | ox.Literal | ox.BlankNode):
        return term.value
    return str(term)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    reload: Annotated[bool, typer.Option(help="Reload on code changes")] = False,
) -> None:
    """Serve the SPARQL endpoint and linked data (builds first when there is no store)."""
    import uvicorn

    settings = get_settings()
    if not settings.store_url and not settings.store_path.exists():
        build()
    uvicorn.run(
        "kg.server.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        reload=reload,
        log_level=settings.log_level,
        http="kg.server.http_protocol:JoinedWritesProtocol",  # head and body in one write
    )


@app.command()
def publish(
    to: Annotated[str | None, typer.Option(
        "--to", help="SPARQL query endpoint (default: KG_STORE_URL)")] = None,
    prune: Annotated[bool, typer.Option(
        help="Drop remote graphs the build does not have")] = True,
) -> None:
    """Load the built store into a remote SPARQL server, graph by graph, and verify counts
    (on Virtuoso: minus the value-equal literals it stores as one, each reported)."""
    from kg.store.publish import publish as run_publish
    from kg.store.remote import RemoteStore

    settings = get_settings()
    if to:
        settings = settings.model_copy(update={"store_url": to})
    if not settings.store_url:
        err.print("no remote store: set KG_STORE_URL or pass --to")
        raise typer.Exit(2)
    source = _open_store(settings)
    remote = RemoteStore(settings)
    try:
        report = run_publish(source, remote, prune=prune, progress=lambda line: err.print(
            line, highlight=False, markup=False, soft_wrap=True))
    except KgError as exc:
        _fail(exc)
        return
    finally:
        remote.close()
    expected = report.expected
    table = Table("graph", "build", "expected", "remote",
                  title=f"Published to {settings.store_url}")
    for name, count in report.graphs.items():
        table.add_row(name or "(default graph)", str(count), str(expected.get(name, 0)),
                      str(report.remote.get(name, 0)))
    console.print(table)
    if not report.ok:
        for problem in report.problems:
            err.print(problem, highlight=False, markup=False, soft_wrap=True)
        err.print(f"counts differ (expected, remote): {report.unexplained}", highlight=False,
                  markup=False, soft_wrap=True)
        raise typer.Exit(1)
    lost = sum(m.lost for m in report.merges)
    merged = (f"; {lost} triples fewer on the backend, the value-equal literals it stores as one "
              "(listed above)") if lost else ""
    console.print(f"{len(report.graphs)} graphs published; counts verified{merged}",
                  soft_wrap=True)


@app.command()
def stats() -> None:
    """Counts of the built store: quads per graph, entities per class, build time."""
    settings = get_settings()
    store = _open_store(settings)
    graphs = Table("graph", "quads", title="Quads per graph")
    for row in store.query(
        "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g"
    ):
        graphs.add_row(row["g"].value, row["n"].value)
    classes = Table("class", "entities", title="Entities per class (asserted)")
    kg = settings.kg_ns
    q = (
        "SELECT ?c (COUNT(DISTINCT ?s) AS ?n) WHERE { GRAPH ?g { ?s a ?c } "
        f'FILTER(STRSTARTS(STR(?g), "{settings.base_iri}graph/doc/")) '
        f'FILTER(STRSTARTS(STR(?c), "{kg}")) }} GROUP BY ?c ORDER BY ?c'
    )
    for row in store.query(q):
        classes.add_row(row["c"].value[len(kg) :], row["n"].value)
    console.print(graphs, classes)
    manifest = settings.dumps_dir / "manifest.json"
    if manifest.exists():
        console.print(f"built at {json.loads(manifest.read_text())['built_at']}")


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="trig|nq|ttl")] = "trig",
    out: Annotated[Path, typer.Option("--out", help="File to write")] = Path("kg.trig"),
) -> None:
    """Export the built store: all graphs (trig, nq) or their union (ttl)."""
    settings = get_settings()
    store = _open_store(settings)
    prefixes = kg_prefixes(settings.base_iri)
    if fmt == "nq":
        from kg.build.writer import nquads

        out.write_bytes(nquads(store))
    elif fmt == "trig":
        store.dump(str(out), format=ox.RdfFormat.TRIG, prefixes=prefixes)
    elif fmt == "ttl":
        union = ox.Store()
        union.bulk_extend(ox.Quad(q.subject, q.predicate, q.object) for q in store)
        union.dump(
            str(out), format=ox.RdfFormat.TURTLE, prefixes=prefixes, from_graph=ox.DefaultGraph()
        )
    else:
        err.print(f"--format {fmt}: expected trig, nq or ttl")
        raise typer.Exit(2)
    console.print(f"wrote {out}")


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="New directory to write the backup into")],
) -> None:
    """Back up the store (verified copy + manifest with checksums); works while serving."""
    from kg.store.backup import backup as run_backup

    try:
        manifest = run_backup(get_settings().store_path, dest)
    except KgError as exc:
        _fail(exc)
    console.print(
        f"backed up {manifest['quads']} quads in {manifest['named_graphs']} named graphs "
        f"from {manifest['source']} to {dest} (sha256 {manifest['sha256'][:16]}…)"
    )


@app.command()
def restore(
    src: Annotated[Path, typer.Argument(help="A directory written by `kg backup`")],
) -> None:
    """Verify a backup, restore it beside the builds and swap it in (previous store kept)."""
    from kg.store.backup import held_by_another_process
    from kg.store.backup import restore as run_restore

    settings = get_settings()
    previous = settings.store_path.resolve() if settings.store_path.exists() else None
    try:
        target = run_restore(src, settings.store_path)
    except KgError as exc:
        _fail(exc)
    console.print(f"restored {src} into {target}; {settings.store_path} now points there")
    if previous is not None and held_by_another_process(previous):
        err.print(f"a running service still serves the previous store ({previous}): restart it")
