"""What the app holds while it runs; reaches routes through a typed dependency."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from kg.config import Settings
from kg.store.base import Store


@dataclass
class AppState:
    settings: Settings
    store: Store  # kg.store.embedded.EmbeddedStore or kg.store.remote.RemoteStore
    executor: Any  # kg.sparql.executor.QueryExecutor (isolated, time-limited query execution)
    extras: dict[str, Any] = field(default_factory=dict)


def get_state(request: Request) -> AppState:
    return request.app.state.kg


StateDep = Annotated[AppState, Depends(get_state)]
