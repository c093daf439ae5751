"""Typed settings, read once from the environment (prefix KG_) at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kg import paths


class Settings(BaseSettings):
    """Every knob of build and service; documented in README.md (Configuration)."""

    model_config = SettingsConfigDict(env_prefix="KG_", env_file=None, extra="ignore")

    base_iri: str = Field(
        "http://localhost:8000/",
        description="Public base IRI: entity IRIs are <base>id/..., terms <base>ontology#...",
    )
    store_path: Path = Field(
        paths.VAR_DIR / "store", description="On-disk Oxigraph store (a symlink swapped by build)"
    )
    dumps_dir: Path = Field(paths.VAR_DIR / "dumps", description="Where build writes dumps")
    sources_dir: Path = Field(
        paths.SOURCES_DIR, description="Source texts (data/sources) that pages quote in context"
    )
    shapes_dir: Path = Field(
        paths.SHAPES_DIR, description="SHACL shapes (*.ttl) that every write is checked against"
    )
    store_url: str | None = Field(
        None, description="SPARQL query endpoint of a remote store; unset: the embedded store"
    )
    store_update_url: str | None = Field(
        None, description="SPARQL Update endpoint (default: derived from store_url)"
    )
    store_gsp_url: str | None = Field(
        None, description="Graph Store protocol endpoint (default: derived from store_url)"
    )
    store_user: str | None = Field(None, description="User for the remote store's endpoints")
    store_password: str | None = Field(None, description="Password for the remote store")
    store_auth: Literal["basic", "digest"] = Field(
        "basic", description="HTTP authentication scheme for the remote store"
    )
    store_dialect: Literal["auto", "oxigraph", "virtuoso", "generic"] = Field(
        "auto", description="Remote server kind (auto: from its Server header)"
    )
    store_version_interval: float = Field(
        0.5, gt=0, description="Seconds between reads of the remote store's dataset version"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    write_token: str | None = Field(
        None, description="Bearer token (or Basic password) for writes; writes are off when unset"
    )
    query_timeout: float = Field(30.0, gt=0, description="Seconds a query may run")
    max_rows: int = Field(
        100_000, gt=0,
        description="Row cap of complete (spooled) results: CONSTRUCT/DESCRIBE, SELECT as XML, "
        "any SELECT when streaming is off; more rows is a 422 (streamed results: no row cap)",
    )
    stream_results: bool = Field(
        True, description="Stream large SELECT results (JSON, CSV, TSV) while they are computed"
    )
    max_result_bytes: int = Field(
        1 << 30, gt=0,
        description="Largest result in bytes: a 422 before the first byte, a cut stream after",
    )
    cache_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="Memory of the /sparql response cache (0: off)"
    )
    cache_entry_bytes: int = Field(
        256 * 1024, ge=0,
        description="Largest response the /sparql cache keeps (at most 256 KB: larger results "
        "are spooled to disk or streamed, never kept)",
    )
    cache_max_age: int = Field(
        0, ge=0, description="Cache-Control max-age (s) of cacheable /sparql GET responses"
    )
    http_lane: bool = Field(
        True,
        description="Answer plain GET /sparql requests inside the HTTP protocol, without an "
        "ASGI cycle (kg.server.protocol_lane; same answers, less CPU per request)",
    )
    max_request_bytes: int = Field(1_000_000, gt=0, description="Largest accepted request body")
    query_workers: int = Field(2, ge=1, description="Processes executing queries")
    query_reserve_workers: int = Field(
        1,
        ge=0,
        description="Of those, how many take a query only once it has waited 5 ms for the "
        "others (a long query holds them, or the load outgrows them); at most all but one",
    )
    query_pipelining: bool = Field(
        True,
        description="Queue queries in busy workers' pipes (faster small queries under load; "
        "false: a query waits in the server until a worker is free)",
    )
    write_queue: int = Field(
        8, ge=1, description="Writes running or waiting; more are refused (503, Retry-After)"
    )
    write_wait: float = Field(
        60.0, gt=0, description="Seconds a write may wait for the one before it (then 503)"
    )
    rehearsal_timeout: float = Field(
        120.0, gt=0, description="Seconds an update's rehearsal may run before it is stopped (503)"
    )
    allow_service: list[str] = Field(
        default_factory=list, description="IRI prefixes SERVICE may call (empty: none)"
    )
    allow_load: list[str] = Field(
        default_factory=list, description="IRI prefixes LOAD may fetch (empty: none)"
    )
    cors_origins: list[str] = Field(default_factory=lambda: ["*"], description="CORS for reads")
    union_default_graph: bool = Field(
        False,
        description="Query the union of named graphs instead of the stored default graph, "
        "which the build fills with their merge (pyoxigraph's union repeats shared triples)",
    )
    log_level: str = "info"

    @field_validator("base_iri")
    @classmethod
    def _ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @property
    def ontology_iri(self) -> str:
        return self.base_iri + "ontology"

    @property
    def kg_ns(self) -> str:
        return self.base_iri + "ontology#"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
