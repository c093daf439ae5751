"""The benchmark's cold competency variants (bench.queries.cold_variant) answer what the queries
answer, with a text of their own per request, so a cold row measures the same work uncached."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
from bench.queries import build_kinds, cold_variant, of_run

from tests import test_competency_queries as competency
from tests.server_process import BASE_IRI


@pytest.fixture(scope="module")
def store(real_store: Path) -> ox.Store:
    return ox.Store.read_only(str(real_store))


@pytest.mark.parametrize("query", competency.QUERIES, ids=lambda p: p.stem)
def test_cold_variant_answers_the_expected_result(store: ox.Store, query: Path) -> None:
    variant = cold_variant(query.read_text(encoding="utf-8"))
    assert variant.count("{n}") == 1
    texts = {variant.replace("{n}", str(n)) for n in (1000, 100_001_000)}
    assert len(texts) == 2
    for text in texts:
        competency._compare(query, competency._run_direct(store, text))


def test_cold_templates_differ_per_request() -> None:
    texts = {p.stem: p.read_text(encoding="utf-8") for p in competency.QUERIES}
    kind = next(k for k in build_kinds(BASE_IRI, f"{BASE_IRI}id/x", texts)
                if k.name == "competency")
    for template in kind.cold:
        assert template.render("", 1) != template.render("", 2)


def test_paired_rounds_fit_in_distinct_query_numbers() -> None:
    """bench.paired gives every run its own range of cold query numbers: the default rounds
    of the three small kinds must fit (no server is needed to check; none starts here)."""
    from bench import paired, servers
    from bench.queries import QueryKind

    def refuse(name: str) -> servers.Server:
        raise servers.ServerError(f"{name}: not started in this test")

    kinds = [QueryKind(name, "", (), (), small=True) for name in ("point", "join", "construct")]
    out = paired.measure(refuse, kinds, [], rounds=paired.ROUNDS, duration=1, connections=1,
                         threads=1, drain_limit=1)
    assert "not started" in out["error"] and out["kinds"] == {}
    with pytest.raises(ValueError, match="too many runs"):
        paired.measure(refuse, kinds, [], rounds=10, duration=1, connections=1, threads=1,
                       drain_limit=1)


def test_of_run_rebuilds_a_runs_entities_and_kinds(tmp_path: Path) -> None:
    """The tools that measure a run's stores afterwards sample the same entities from its data
    file (the newest of that size), and say plainly when there is none."""
    with pytest.raises(SystemExit, match=r"run `python -m bench\.run` first"):
        of_run(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    label = "<http://www.w3.org/2000/01/rdf-schema#label>"
    lines = [f'<http://localhost:8000/id/e{n}> {label} "e{n}" .' for n in range(5)]
    (data / "kg-abc-real-s42.nq").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (data / "kg-abc-1m-s42.nq").write_text(lines[0] + "\n", encoding="utf-8")
    entities, kinds = of_run(tmp_path)
    assert entities == [f"http://localhost:8000/id/e{n}" for n in range(5)]
    assert {"point", "join", "aggregate", "construct"} <= set(kinds)
    assert of_run(tmp_path, "1m")[0] == ["http://localhost:8000/id/e0"]
