"""Access control (issue 7): every write path refuses a request without the credential, with a
wrong one, and with one supplied anywhere but the Authorization header (query string, form
field, cookie); the comparison is constant-time; credentials never reach the log."""

from __future__ import annotations

import ast
import base64
import inspect
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request

from kg.config import Settings
from kg.errors import Unauthorized
from kg.server import auth
from kg.server.app import create_app
from tests.reliability_support import fingerprint
from tests.server_process import BASE_IRI, ServerProcess, start_server

TOKEN = "access-control-token-7f3a"
WRONG = "access-control-token-7f3b"
GRAPH = f"{BASE_IRI}rdf-graphs/ac"
TURTLE = {"Content-Type": "text/turtle"}
UPDATE = f'INSERT DATA {{ GRAPH <{GRAPH}> {{ <http://e/a> <http://e/b> "c" }} }}'

# Every route that accepts a writing method; a new one must be added here (and to WRITES).
WRITE_ROUTES = {"/sparql", "/sparql/", "/rdf-graphs", "/rdf-graphs/{rest:path}",
                "/graph/{rest:path}"}
WRITES: dict[str, tuple[str, str, dict[str, object]]] = {
    "update direct": ("POST", "/sparql", {
        "content": UPDATE.encode(), "headers": {"Content-Type": "application/sparql-update"}}),
    "update form": ("POST", "/sparql", {"data": {"update": UPDATE}}),
    "update form, slash": ("POST", "/sparql/", {"data": {"update": UPDATE}}),
    "gsp put indirect": ("PUT", "/rdf-graphs", {
        "params": {"graph": GRAPH}, "content": b"<http://e/a> <http://e/b> 1 .",
        "headers": TURTLE}),
    "gsp post indirect": ("POST", "/rdf-graphs", {
        "params": {"graph": GRAPH}, "content": b"<http://e/a> <http://e/b> 2 .",
        "headers": TURTLE}),
    "gsp post collection": ("POST", "/rdf-graphs", {
        "content": b"<http://e/a> <http://e/b> 3 .", "headers": TURTLE}),
    "gsp delete indirect": ("DELETE", "/rdf-graphs", {"params": {"graph": GRAPH}}),
    "gsp delete default": ("DELETE", "/rdf-graphs", {"params": {"default": ""}}),
    "gsp put direct": ("PUT", "/rdf-graphs/ac", {
        "content": b"<http://e/a> <http://e/b> 4 .", "headers": TURTLE}),
    "gsp delete direct": ("DELETE", "/graph/ontology", {}),
    "gsp post direct": ("POST", "/graph/ontology", {
        "content": b"<http://e/a> <http://e/b> 5 .", "headers": TURTLE}),
}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


REFUSED_CREDENTIALS: dict[str, dict[str, object]] = {
    "none": {},
    "wrong bearer": {"headers": {"Authorization": f"Bearer {WRONG}"}},
    "wrong basic": {"headers": {"Authorization": _basic("kg", WRONG)}},
    "token as basic user": {"headers": {"Authorization": _basic(TOKEN, "")}},
    "token prefix": {"headers": {"Authorization": f"Bearer {TOKEN[:-1]}"}},
    "token and more": {"headers": {"Authorization": f"Bearer {TOKEN}x"}},
    "unknown scheme": {"headers": {"Authorization": f"Token {TOKEN}"}},
    "query ?token=": {"params": {"token": TOKEN}},
    "query ?access_token=": {"params": {"access_token": TOKEN}},
    "query ?key=": {"params": {"key": TOKEN, "password": TOKEN}},
    "cookie": {"cookies": {"token": TOKEN, "access_token": TOKEN}},
    "other header": {"headers": {"X-Api-Key": TOKEN, "X-Auth-Token": TOKEN}},
}


@pytest.fixture(scope="module")
def guarded(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    store = tmp_path_factory.mktemp("access") / "store"
    shutil.copytree(sample_store, store)
    proc = start_server(store, tmp_path_factory.mktemp("access-logs"), KG_WRITE_TOKEN=TOKEN)
    yield proc
    proc.stop()


def _merge(request: dict[str, object], credential: dict[str, object]) -> dict[str, object]:
    merged = dict(request)
    for key, value in credential.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}  # type: ignore[dict-item]
        else:
            merged[key] = value
    return merged


def _routes(routes: list[object]) -> Iterator[object]:
    """Every route, through included routers (FastAPI ≥ 0.16x wraps them)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def test_every_writing_route_is_covered() -> None:
    app = create_app(Settings(base_iri=BASE_IRI, write_token=TOKEN))
    writing = {
        route.path for route in _routes(app.routes)  # type: ignore[attr-defined]
        if set(getattr(route, "methods", None) or ()) & {"PUT", "POST", "DELETE", "PATCH"}
    }
    assert writing == WRITE_ROUTES, "a new writing route: add it to WRITES and WRITE_ROUTES"
    assert {path for _, path, _ in WRITES.values()} >= {"/sparql", "/sparql/", "/rdf-graphs"}


@pytest.mark.parametrize("credential", sorted(REFUSED_CREDENTIALS))
def test_writes_refused_without_a_valid_credential(
    guarded: ServerProcess, credential: str
) -> None:
    before = fingerprint(guarded.url)
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        for name, (method, path, request) in WRITES.items():
            kwargs = _merge(request, REFUSED_CREDENTIALS[credential])
            cookies = kwargs.pop("cookies", None)
            client.cookies.clear()
            if cookies:
                client.cookies.update(cookies)  # type: ignore[arg-type]
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
            assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
            assert "Bearer" in response.headers["www-authenticate"]
    assert fingerprint(guarded.url) == before


def test_the_right_credential_is_accepted(guarded: ServerProcess) -> None:
    """The same requests with the token in the header do write (the refusals above are
    about the credential, not the requests)."""
    # what <GRAPH> holds after each (None: no such graph)
    effects = {"update direct": '<http://e/a> <http://e/b> "c" .',
               "gsp put indirect": '<http://e/a> <http://e/b> "1"^^'
                                   '<http://www.w3.org/2001/XMLSchema#integer> .',
               "gsp delete indirect": None}
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        for auth_header in (f"Bearer {TOKEN}", _basic("anyone", TOKEN)):
            for name, held in effects.items():
                method, path, request = WRITES[name]
                kwargs = _merge(request, {"headers": {"Authorization": auth_header}})
                response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
                assert response.status_code in (201, 204), f"{name}: {response.text}"
                back = client.get("/rdf-graphs", params={"graph": GRAPH},
                                  headers={"Accept": "application/n-triples"})
                if held is None:
                    assert back.status_code == 404, f"{name}: {back.status_code}"
                else:
                    assert back.status_code == 200, f"{name}: {back.text}"
                    lines = back.text.strip().splitlines()  # the update adds to the graph
                    assert held in lines if name == "update direct" else lines == [held], (
                        f"{name}: {back.text}")


def test_read_only_server_refuses_every_write(server: ServerProcess) -> None:
    """With no token configured, writes are off whatever the request carries."""
    before = fingerprint(server.url)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for name, (method, path, request) in WRITES.items():
            for credential in ({}, {"headers": {"Authorization": f"Bearer {TOKEN}"}}):
                response = client.request(method, path, **_merge(request, credential))  # type: ignore[arg-type]
                assert response.status_code == 403, f"{name}: {response.text}"
    assert fingerprint(server.url) == before


def test_credentials_are_never_logged(guarded: ServerProcess) -> None:
    since = guarded.log_size()
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        for value in (TOKEN, WRONG):
            for header in (f"Bearer {value}", _basic("kg", value)):
                client.post("/sparql", data={"update": UPDATE}, headers={"Authorization": header})
            client.post("/sparql", params={"token": value}, data={"update": UPDATE})
    guarded.access_entries("/sparql", 6, since)  # these requests were logged...
    log = guarded.log()
    for value in (TOKEN, WRONG, TOKEN[:12], WRONG[:12]):
        assert value not in log  # ...without the credentials
    for value in (TOKEN, WRONG):
        assert base64.b64encode(f"kg:{value}".encode()).decode() not in log


def _request(authorization: str | None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "method": "POST", "path": "/sparql", "headers": headers})


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    settings = Settings(base_iri=BASE_IRI, write_token=TOKEN)
    auth.check_write_access(_request(f"Bearer {TOKEN}"), settings)
    auth.check_write_access(_request(_basic("u", TOKEN)), settings)
    for wrong in (f"Bearer {WRONG}", _basic("u", WRONG)):
        with pytest.raises(Unauthorized):
            auth.check_write_access(_request(wrong), settings)
    assert len(calls) == 4
    assert all(b == TOKEN.encode() for _, b in calls)


def test_no_plain_comparison_of_secrets() -> None:
    """No `==`/`!=`/`in` on the token or the presented secret anywhere in the auth module."""
    tree = ast.parse(inspect.getsource(auth))
    secret_names = {"token", "secret", "write_token", "password"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and not all(
            isinstance(op, ast.Is | ast.IsNot) for op in node.ops
        ):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            assert not names & secret_names, ast.unparse(node)
