"""A thin notebook client: SPARQL results from a kg server as pandas DataFrames with typed columns.

Uses rdflib's SPARQLStore (the client researchers already have) and needs pandas, which is not a
service dependency: `pip install 'kg[notebook]'` (or the test extra). Column types follow the
literals' datatypes so that plotting and arithmetic work without casting:
xsd integers -> Int64, decimals/doubles -> Float64, booleans -> boolean, xsd:date/dateTime ->
datetime64 when every value is a full date, everything else (IRIs, strings, gYear,
gYearMonth, mixed columns) -> string.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rdflib import BNode, Literal
from rdflib.namespace import XSD
from rdflib.plugins.stores.sparqlstore import SPARQLStore

from kg import paths

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_ENDPOINT = "http://localhost:8000/sparql"

INTEGER_TYPES = {XSD[t] for t in ("integer", "int", "long", "short", "byte", "nonNegativeInteger",
                                  "positiveInteger", "negativeInteger", "nonPositiveInteger",
                                  "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte")}
FLOAT_TYPES = {XSD.decimal, XSD.double, XSD.float}
DATE_TYPES = {XSD.date, XSD.dateTime}


def endpoint_url() -> str:
    """The server to talk to: env KG_ENDPOINT, else a local `kg serve`."""
    return os.environ.get("KG_ENDPOINT", DEFAULT_ENDPOINT)


def connect(endpoint: str | None = None, **kwargs: Any) -> SPARQLStore:
    """An rdflib SPARQLStore on the endpoint, asking for SPARQL JSON results."""
    kwargs.setdefault("returnFormat", "json")
    return SPARQLStore(endpoint or endpoint_url(), **kwargs)


def competency_query(name: str, directory: Path | None = None) -> str:
    """The text of queries/<name>.rq (relative IRIs in it resolve against the server's base)."""
    return ((directory or paths.QUERIES_DIR) / f"{name}.rq").read_text(encoding="utf-8")


def _column_kind(values: list[object]) -> str:
    literals = [v for v in values if v is not None]
    if not literals or not all(isinstance(v, Literal) for v in literals):
        return "string"
    datatypes = {v.datatype for v in literals}  # type: ignore[union-attr]
    if datatypes <= INTEGER_TYPES:
        return "integer"
    if datatypes <= INTEGER_TYPES | FLOAT_TYPES:
        return "float"
    if datatypes == {XSD.boolean}:
        return "boolean"
    if datatypes <= DATE_TYPES:
        return "datetime"
    return "string"


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, BNode):
        return f"_:{value}"
    return str(value)  # URIRef and Literal: their lexical form


def to_dataframe(result: Any) -> pd.DataFrame:
    """Turn an rdflib SELECT result (or a list of binding dicts) into a typed DataFrame."""
    import pandas as pd

    variables = [str(v) for v in getattr(result, "vars", None) or []]
    rows = [dict(row.asdict()) if hasattr(row, "asdict") else dict(row) for row in result]
    if not variables and rows:
        variables = sorted({str(k) for row in rows for k in row})
    columns: dict[str, pd.Series] = {}
    for var in variables:
        values = [next((v for k, v in row.items() if str(k) == var), None) for row in rows]
        kind = _column_kind(values)
        if kind == "integer":
            series = pd.array([None if v is None else int(str(v)) for v in values], dtype="Int64")
        elif kind == "float":
            series = pd.array([None if v is None else float(str(v)) for v in values],
                              dtype="Float64")
        elif kind == "boolean":
            series = pd.array([None if v is None else str(v).strip() in {"true", "1"}
                               for v in values], dtype="boolean")
        elif kind == "datetime":
            series = pd.to_datetime(pd.Series([_text(v) for v in values], dtype="string"),
                                    utc=False, errors="coerce", format="ISO8601")
        else:
            series = pd.array([_text(v) for v in values], dtype="string")
        columns[var] = pd.Series(series, name=var)
    return pd.DataFrame(columns, columns=variables)


def query(text: str, endpoint: str | None = None, store: SPARQLStore | None = None
          ) -> pd.DataFrame:
    """Run a SELECT at the endpoint and return its rows as a typed DataFrame."""
    store = store or connect(endpoint)
    return to_dataframe(store.query(text))

