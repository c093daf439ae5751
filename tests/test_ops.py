"""Operations: health, Prometheus metrics, and access logs that never hold query text."""

from __future__ import annotations

import asyncio
import json
import uuid
from types import SimpleNamespace

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kg.server import metrics
from kg.server.routes.ops import healthz
from tests.server_process import ServerProcess


def _sample(server: ServerProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_healthz_ok(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["empty"] is False
    assert "store" not in body  # no filesystem paths on a public endpoint


def test_healthz_503_when_the_store_does_not_answer() -> None:
    class Broken:
        def query(self, *args: object, **kwargs: object) -> bool:
            raise OSError("store gone")

    state = SimpleNamespace(store=SimpleNamespace(raw=Broken(), version=1))
    response = asyncio.run(healthz(state))  # type: ignore[arg-type]
    assert response.status_code == 503
    assert json.loads(response.body)["status"] == "unavailable"


def test_metric_names_other_helpers_use() -> None:
    metrics.QUERY_TIMEOUTS.inc(0)
    metrics.REJECTED_QUERIES.labels(reason="service").inc(0)
    metrics.UPDATES.labels(outcome="committed").inc(0)
    metrics.REQUESTS.labels(method="GET", route="/x", status="200").inc(0)
    metrics.LATENCY.labels(route="/x").observe(0)


def test_metrics_count_requests_by_route_template(server: ServerProcess) -> None:
    labels = {"method": "GET", "route": "/id/{rest:path}", "status": "303"}
    before = _sample(server, "kg_http_requests_total", **labels)
    latency_before = _sample(server, "kg_http_request_duration_seconds_count",
                             route="/id/{rest:path}")
    httpx.get(f"{server.url}/id/agreement/spa", headers={"Accept": "text/turtle"})
    httpx.get(f"{server.url}/id/state/japan", headers={"Accept": "text/turtle"})
    assert _sample(server, "kg_http_requests_total", **labels) == before + 2
    assert _sample(server, "kg_http_request_duration_seconds_count",
                   route="/id/{rest:path}") == latency_before + 2
    r = httpx.get(f"{server.url}/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    for name in ("kg_query_timeouts_total", "kg_http_requests_total"):
        assert name in r.text
    # unknown paths share one label, so scanners cannot blow up the series count
    httpx.get(f"{server.url}/no/such/{uuid.uuid4().hex}")
    assert "route=\"<unmatched>\"" in httpx.get(f"{server.url}/metrics").text


def test_access_log_is_json_without_query_text(server: ServerProcess) -> None:
    secret = f"SECRET{uuid.uuid4().hex}"
    query = f'SELECT * WHERE {{ ?s ?p "{secret}" }}'
    since = server.log_size()
    httpx.get(f"{server.url}/sparql", params={"query": query})
    httpx.post(f"{server.url}/sparql", data={"query": query})
    httpx.get(f"{server.url}/healthz", params={"token": secret},
              headers={"Authorization": f"Bearer {secret}"})
    sparql = server.access_entries("/sparql", 2, since)  # this test's own requests
    server.access_entries("/healthz", 1, since)
    assert secret not in server.log()
    sparql = [e for e in sparql if e["method"] == "POST"]
    assert sparql
    entry = sparql[-1]
    assert set(entry) >= {"method", "path", "status", "duration_ms", "bytes"}
    assert isinstance(entry["status"], int) and isinstance(entry["bytes"], int)
