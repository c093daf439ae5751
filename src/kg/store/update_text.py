"""A small SPARQL Update tokenizer: enough to refuse LOAD/SERVICE and to apply the protocol's
`using-graph-uri`/`using-named-graph-uri` parameters, which pyoxigraph's `Store.update` lacks.

Why a tokenizer and not a regex over the text: keywords inside strings, IRIs and comments must
not count, and nesting depth decides whether a WHERE belongs to an operation or to a subquery.
Codepoint escapes (`\\uXXXX`, `\\UXXXXXXXX`) are decoded first, as the SPARQL grammar says
(section 19.2), so an escaped `LOAD` or `SERVICE` is still seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin

import pyoxigraph as ox

from kg.errors import BadParameter, ForbiddenOperation

_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
              |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*")
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<word>[A-Za-z_][\w\-.]*(?::[\w\-.:%\\]*)?|:[\w\-.:%\\]*|[?$]\w+)
  | (?P<open>\{)
  | (?P<close>\})
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    depth: int  # brace depth before the token


def decode_escapes(text: str) -> str:
    """Apply SPARQL's codepoint escapes to the whole text, before tokenizing."""

    def repl(match: re.Match[str]) -> str:
        try:
            return chr(int(match.group(1) or match.group(2), 16))
        except ValueError:
            return match.group(0)

    return _ESCAPE.sub(repl, text)


def tokens(text: str) -> list[Token]:
    """Significant tokens (no whitespace or comments) with their brace depth."""
    out: list[Token] = []
    depth = 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        if kind == "close":
            depth = max(depth - 1, 0)
        out.append(Token(kind, match.group(), match.start(), depth))
        if kind == "open":
            depth += 1
    return out


def _prefixes(toks: list[Token]) -> dict[str, str]:
    found: dict[str, str] = {}
    for i, tok in enumerate(toks[:-2]):
        if tok.kind == "word" and tok.text.upper() == "PREFIX" and toks[i + 2].kind == "iri":
            found[toks[i + 1].text.rstrip(":")] = toks[i + 2].text[1:-1]
    return found


def _target(tok: Token, prefixes: dict[str, str], base_iri: str) -> str | None:
    """The IRI a LOAD/SERVICE token points at, if it can be resolved statically."""
    if tok.kind == "iri":
        return urljoin(base_iri, tok.text[1:-1])
    if tok.kind == "word" and ":" in tok.text and not tok.text.startswith(("?", "$")):
        prefix, _, local = tok.text.partition(":")
        if prefix in prefixes:
            return urljoin(base_iri, prefixes[prefix] + local)
    return None


def check_remote_access(
    text: str, *, base_iri: str, allow_load: Iterable[str], allow_service: Iterable[str]
) -> None:
    """Refuse LOAD and SERVICE unless their target starts with an allow-listed prefix.

    The in-memory rehearsal of an update executes it, so this must run before anything else:
    pyoxigraph would fetch any URL, loopback included.
    """
    toks = tokens(decode_escapes(text))
    prefixes = _prefixes(toks)
    rules = {"LOAD": tuple(allow_load), "SERVICE": tuple(allow_service)}
    for i, tok in enumerate(toks):
        keyword = tok.text.upper() if tok.kind == "word" else ""
        if keyword not in rules:
            continue
        following = [t for t in toks[i + 1 : i + 3] if t.text.upper() != "SILENT"]
        target = _target(following[0], prefixes, base_iri) if following else None
        allowed = rules[keyword]
        if target is None or not any(target.startswith(prefix) for prefix in allowed):
            shown = target or (following[0].text if following else "?")
            raise ForbiddenOperation(
                f"{keyword} <{shown}> is not allowed on this service "
                f"(allow-listed prefixes: {', '.join(allowed) or 'none'}).",
                operation=keyword,
            )


def apply_protocol_dataset(
    text: str, using_graph_uris: Iterable[str], using_named_graph_uris: Iterable[str]
) -> str:
    """Insert USING / USING NAMED clauses for the protocol parameters into every DELETE/INSERT
    ... WHERE operation, as SPARQL 1.1 Protocol section 2.2.3 specifies.

    A request that has both the parameters and a USING, USING NAMED or WITH clause is an error
    (400), per the same section. DELETE WHERE and the DATA forms take no dataset, so they are
    left as they are.
    """
    default = [_iri(u) for u in using_graph_uris]
    named = [_iri(u) for u in using_named_graph_uris]
    if not default and not named:
        return text
    toks = tokens(text)
    top = [t for t in toks if t.depth == 0]
    for tok in top:
        if tok.kind == "word" and tok.text.upper() in ("USING", "WITH"):
            raise BadParameter(
                "using-graph-uri/using-named-graph-uri cannot be combined with a USING or WITH "
                "clause in the update (SPARQL 1.1 Protocol, section 2.2.3)."
            )
    clause = " ".join([f"USING {g}" for g in default] + [f"USING NAMED {g}" for g in named])
    inserts: list[int] = []
    for previous, tok in zip([None, *top], top, strict=False):
        if tok.kind == "word" and tok.text.upper() == "WHERE":
            if previous is not None and previous.text.upper() == "DELETE":
                continue
            inserts.append(tok.start)
    for position in reversed(inserts):
        text = f"{text[:position]}{clause} {text[position:]}"
    return text


def _iri(value: str) -> str:
    """An IRI parameter as SPARQL syntax; pyoxigraph validates it, so nothing can be injected."""
    try:
        return str(ox.NamedNode(value))
    except ValueError as exc:
        raise BadParameter(f"not an absolute IRI: {value!r}") from exc
