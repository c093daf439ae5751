"""kg.client turns SPARQL results into DataFrames whose column types follow the datatypes."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from rdflib import BNode, Literal, URIRef

from kg import client
from tests.server_process import ServerProcess
from tests.workbench_support import serve_workbench

XS = "http://www.w3.org/2001/XMLSchema#"


def test_typed_columns_from_bindings() -> None:
    def lit(value: object, datatype: str) -> Literal:
        return Literal(value, datatype=URIRef(XS + datatype))

    rows = [
        {"x": URIRef("http://e/1"), "n": lit(3, "integer"), "d": lit("2024-07-01", "date"),
         "p": lit("2023-03", "gYearMonth"), "f": lit("1.5", "decimal"), "b": BNode("b0")},
        {"x": URIRef("http://e/2"), "n": None, "d": lit("2018-07-17", "date"),
         "p": lit("2018", "gYear"), "f": None, "b": None},
    ]
    df = client.to_dataframe(rows)
    assert str(df["n"].dtype) == "Int64" and df["n"].tolist()[0] == 3 and pd.isna(df["n"][1])
    assert pd.api.types.is_datetime64_any_dtype(df["d"])
    assert df["d"][0] == pd.Timestamp("2024-07-01")
    assert str(df["p"].dtype) == "string" and df["p"].tolist() == ["2023-03", "2018"]
    assert str(df["f"].dtype) == "Float64"
    assert df["x"].tolist() == ["http://e/1", "http://e/2"]
    assert df["b"][0] == "_:b0"


def test_mixed_datatypes_fall_back_to_strings() -> None:
    rows = [{"v": Literal(1, datatype=URIRef(XS + "integer"))}, {"v": Literal("one")}]
    assert str(client.to_dataframe(rows)["v"].dtype) == "string"


@pytest.fixture(scope="module")
def wb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_workbench(tmp_path_factory)


def test_query_against_a_live_server(wb: ServerProcess) -> None:
    df = client.query(client.competency_query("actors-by-kind"), endpoint=wb.url + "/sparql")
    assert list(df.columns) == ["kind", "actors"]
    assert str(df["actors"].dtype) == "Int64" and df["actors"].sum() >= 4
    empty = client.query("SELECT ?x WHERE { FILTER(false) }", endpoint=wb.url + "/sparql")
    assert list(empty.columns) == ["x"] and empty.empty
