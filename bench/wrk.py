"""Drive wrk with generated Lua scripts and parse what it measured.

The Lua script builds each request from the templates of bench.queries; its `done` hook prints
one JSON line (requests, duration, latency percentiles in microseconds, error counts), which is
more robust than scraping wrk's human-readable summary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.queries import ENTITY, NUMBER, Template

MARK = "BENCHJSON "
MAX_OFFSET = 90_000_000  # cold request numbers: thread t uses 1000 + offset + t·10⁸ + counter

LUA = r"""
local templates = %(templates)s
local entities = %(entities)s
local prefix = %(prefix)s
local cold = %(cold)s
local offset = %(offset)d
local threads_n = 0
local counter = 0
local base = 0
local fixed = {}

function setup(thread)
  thread:set("tid", threads_n)
  threads_n = threads_n + 1
end

function init(args)
  base = 1000 + offset + (tid or 0) * 100000000
  if not cold then
    for i, t in ipairs(templates) do
      fixed[i] = wrk.format("GET", prefix .. table.concat(t.parts), {["Accept"] = t.accept})
    end
  end
end

function request()
  counter = counter + 1
  local i = (counter %% #templates) + 1
  if not cold then
    return fixed[i]
  end
  local t = templates[i]
  local buf = {prefix}
  for _, part in ipairs(t.parts) do
    if part == 1 then
      buf[#buf + 1] = entities[((counter * 7 + (tid or 0) * 13) %% #entities) + 1]
    elseif part == 2 then
      buf[#buf + 1] = tostring(base + counter)
    else
      buf[#buf + 1] = part
    end
  end
  return wrk.format("GET", table.concat(buf), {["Accept"] = t.accept})
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,' ..
    '"write":%%d,"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,' ..
    '"mean_us":%%d,"max_us":%%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    non2xx: int
    socket_errors: int
    bytes: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class WrkError(RuntimeError):
    pass


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    # Long brackets would be simpler but URL-encoded text has no quotes or backslashes anyway.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lua_templates(templates: tuple[Template, ...]) -> str:
    rows = []
    for t in templates:
        parts = ", ".join(
            "1" if p == ENTITY else "2" if p == NUMBER else _lua_string(str(p)) for p in t.parts
        )
        rows.append(f"{{accept = {_lua_string(t.accept)}, parts = {{{parts}}}}}")
    return "{\n" + ",\n".join(rows) + "\n}"


def lua_script(templates: tuple[Template, ...], entities: list[str], path: str,
               cold: bool, offset: int = 0) -> str:
    """`offset` moves the per-request numbers of cold requests, so that runs of one kind against
    one server (bench.paired's rounds) never repeat a query text a cache could have kept."""
    if not 0 <= offset < MAX_OFFSET:
        raise ValueError("offset must stay below the next thread's numbers (10⁸ apart)")
    encoded = [urllib.parse.quote(e, safe="") for e in entities] or ["urn:x"]
    return LUA % {
        "templates": _lua_templates(templates),
        "entities": "{" + ", ".join(_lua_string(e) for e in encoded) + "}",
        "prefix": _lua_string(path + "?query="),
        "cold": "true" if cold else "false",
        "offset": offset,
        "mark": MARK,
    }


def parse_output(stdout: str) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith(MARK):
            raw = json.loads(line[len(MARK):])
            break
    else:
        raise WrkError(f"no summary in wrk output:\n{stdout[-2000:]}")
    seconds = raw["duration_us"] / 1e6
    sockets = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    done = raw["requests"]
    return WrkResult(
        requests=done,
        seconds=round(seconds, 3),
        rps=round(done / seconds, 1) if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=round(raw["mean_us"] / 1000, 3),
        max_ms=raw["max_us"] / 1000,
        errors=raw["status"] + sockets,
        non2xx=raw["status"],
        socket_errors=sockets,
        bytes=raw["bytes"],
    )


def run(host: str, port: int, path: str, templates: tuple[Template, ...], entities: list[str],
        cold: bool, duration: float, connections: int, threads: int,
        timeout: float = 60.0, offset: int = 0) -> WrkResult:
    binary = wrk_binary()
    if binary is None:
        raise WrkError("wrk is missing: bash bench/install.sh")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua_script(templates, entities, path, cold, offset))
        script = Path(fh.name)
    try:
        argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
                f"--timeout={int(timeout)}s", "-s", str(script), f"http://{host}:{port}"]
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=duration + timeout + 30)
    finally:
        script.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise WrkError(f"wrk failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return parse_output(proc.stdout)
