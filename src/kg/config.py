"""Typed settings, read once from the environment (prefix KG_) at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
    shapes_dir: Path = Field(
        paths.SHAPES_DIR, description="SHACL shapes (*.ttl) that every write is checked against"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    write_token: str | None = Field(
        None, description="Bearer token (or Basic password) for writes; writes are off when unset"
    )
    query_timeout: float = Field(30.0, gt=0, description="Seconds a query may run")
    max_rows: int = Field(100_000, gt=0, description="Row cap of a SELECT result")
    max_request_bytes: int = Field(1_000_000, gt=0, description="Largest accepted request body")
    query_workers: int = Field(2, ge=1, description="Processes executing queries")
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
