"""A SPARQL tokenizer that classifies a request and refuses SERVICE/LOAD before execution.

Why a tokenizer and not a regex: keywords may hide behind prefixed names, `\\u` escapes, and
may appear harmlessly inside comments, strings and IRIs. pyoxigraph fetches any SERVICE or LOAD
IRI over HTTP, so the guard must see exactly what the parser would see.

pyoxigraph decodes `\\u`/`\\U` escapes inside IRIs and strings but not in keywords, whereas the
SPARQL spec decodes them everywhere before parsing. The guard therefore scans two views, the raw
text (escapes decoded per token) and the fully decoded text, and refuses when either view shows a
SERVICE or LOAD whose target is not allow-listed. A target that cannot be resolved statically
(a variable, an undeclared prefix) is refused.

Nesting is bounded too (`MAX_NESTING` brackets deep): pyoxigraph's parser and evaluator recurse
per level, and a few thousand nested groups overflow the native stack (SIGSEGV). In a query
worker that costs a worker; in the write rehearsal, which parses in the server process, it
took the whole server down. No real query comes near the limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

from kg.errors import BadParameter, ForbiddenOperation

QUERY_FORMS = frozenset({"SELECT", "CONSTRUCT", "DESCRIBE", "ASK"})
UPDATE_FORMS = frozenset(
    {"INSERT", "DELETE", "LOAD", "CLEAR", "CREATE", "DROP", "COPY", "MOVE", "ADD", "WITH"}
)

MAX_NESTING = 256  # crashes were measured from ~2,500 nested groups (issue 7)
_OPENERS = frozenset({"{", "(", "[", "{|"})
_CLOSERS = frozenset({"}", ")", "]", "|}"})

_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_PN_CHARS_BASE = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_PN_CHARS_U = _PN_CHARS_BASE + "_"
_PN_CHARS = _PN_CHARS_U + r"\-0-9\u00b7\u0300-\u036f\u203f-\u2040"
PN_PREFIX = f"[{_PN_CHARS_BASE}](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?"
_PLX = r"%[0-9A-Fa-f]{2}|\\[_~.\-!$&'()*+,;=/?#@%]"
_PN_LOCAL = (
    f"(?:[{_PN_CHARS_U}:0-9]|{_PLX})"
    f"(?:(?:[{_PN_CHARS}.:]|{_PLX})*(?:[{_PN_CHARS}:]|{_PLX}))?"
)

# Order matters: IRIs, strings and comments are recognised before anything that could look like
# a keyword inside them. Long strings before short ones.
_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n\r]*)
  | (?P<iri><[^<>"{{}}|^`\\\x00-\x20]*>)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*(?:'''|$)
             |\"\"\"(?:[^"\\]|\\.|"(?!""))*(?:\"\"\"|$)
             |'(?:[^'\\\n\r]|\\.)*(?:'|$|(?=[\n\r]))
             |"(?:[^"\\\n\r]|\\.)*(?:"|$|(?=[\n\r])))
  | (?P<var>[?$][{_PN_CHARS_U}0-9][{_PN_CHARS_U}0-9\u00b7\u0300-\u036f\u203f-\u2040]*)
  | (?P<bnode>_:[{_PN_CHARS_U}0-9](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?)
  | (?P<pname>(?:{PN_PREFIX})?:(?:{_PN_LOCAL})?)
  | (?P<lang>@[a-zA-Z]+(?:-[a-zA-Z0-9]+)*(?:--[a-zA-Z]+)?)
  | (?P<number>[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>\^\^|&&|\|\||!=|<=|>=|<<|>>|\{{\||\|}}|[{{}}()\[\];,.*/+\-=!<>|^&@'"])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Analysis:
    """What the guard learned: 'query' or 'update', and for a query its form."""

    operation: str  # "query" | "update" | "unknown"
    form: str | None  # SELECT, CONSTRUCT, DESCRIBE, ASK, or the first update keyword
    # where the query form starts, so where the prologue ends, when the fast path saw it
    # (kg.sparql.prologue.prologue_prefixes reads the prologue alone); None: not known
    prologue_end: int | None = None


def decode_escapes(text: str) -> str:
    """Replace \\uXXXX and \\UXXXXXXXX by their code points (invalid ones are kept)."""

    def repl(match: re.Match[str]) -> str:
        code = int(match.group(1) or match.group(2), 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return match.group(0)
        return chr(code)

    return _ESCAPE.sub(repl, text)


def tokenize(text: str) -> Iterator[Token]:
    """Significant tokens (whitespace and comments dropped); never raises."""
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        yield Token(kind, match.group(), match.start())


class _Scope:
    """BASE and PREFIX declarations seen so far, to resolve a SERVICE/LOAD target."""

    def __init__(self, base: str | None) -> None:
        self.base = base
        self.prefixes: dict[str, str] = {}

    def resolve_iri(self, token: Token) -> str | None:
        if token.kind == "iri":
            iri = decode_escapes(token.text[1:-1])
            return urljoin(self.base, iri) if self.base else iri
        if token.kind == "pname":
            prefix, _, local = token.text.partition(":")
            namespace = self.prefixes.get(prefix)
            if namespace is None:
                return None
            local = re.sub(r"\\(.)", r"\1", decode_escapes(local))
            return namespace + local
        return None


def _scan(
    tokens: Sequence[Token],
    allow_service: Sequence[str],
    allow_load: Sequence[str],
    base: str | None,
) -> None:
    scope = _Scope(base)
    for i, token in enumerate(tokens):
        if token.kind != "word":
            continue
        word = token.text.upper()
        following = tokens[i + 1 : i + 4]
        if word == "BASE" and following and following[0].kind == "iri":
            scope.base = scope.resolve_iri(following[0])
        elif word == "PREFIX" and len(following) >= 2 and following[0].kind == "pname":
            namespace = scope.resolve_iri(following[1])
            if namespace is not None:
                scope.prefixes[following[0].text.rstrip(":")] = namespace
        elif word in ("SERVICE", "LOAD"):
            rest = list(following)
            if rest and rest[0].kind == "word" and rest[0].text.upper() == "SILENT":
                rest = rest[1:]
            target = scope.resolve_iri(rest[0]) if rest else None
            allowed = allow_service if word == "SERVICE" else allow_load
            setting = "KG_ALLOW_SERVICE" if word == "SERVICE" else "KG_ALLOW_LOAD"
            if target is None:
                shown = rest[0].text if rest else "nothing"
                raise ForbiddenOperation(
                    f"{word} is refused: its target ({shown}) is not a resolvable IRI",
                    operation=word,
                )
            if not any(_allowed(target, prefix) for prefix in allowed if prefix):
                raise ForbiddenOperation(
                    f"{word} <{target}> is refused: the target is not allow-listed "
                    f"({setting} is {'empty' if not allowed else list(allowed)})",
                    operation=word,
                    target=target,
                )


def _allowed(target: str, prefix: str) -> bool:
    """A prefix match on a boundary: `http://a.example` must not admit `http://a.example.evil/`."""
    if not target.startswith(prefix):
        return False
    rest = target[len(prefix):]
    return not rest or prefix[-1] in "/#?=&" or rest[0] in "/?#"


def _check_nesting(tokens: Sequence[Token]) -> None:
    """Refuse brackets nested deeper than MAX_NESTING (see the module doc)."""
    depth = 0
    for token in tokens:
        if token.kind != "punct":
            continue
        if token.text in _OPENERS:
            depth += 1
            if depth > MAX_NESTING:
                raise BadParameter(
                    f"The request nests groups, sub-queries or expressions more than "
                    f"{MAX_NESTING} levels deep; flatten it.",
                    max_nesting=MAX_NESTING,
                )
        elif token.text in _CLOSERS:
            depth = max(depth - 1, 0)


def _classify(tokens: Iterable[Token]) -> Analysis:
    """The first query-form or update keyword after the prologue decides."""
    for token in tokens:
        if token.kind != "word":
            continue
        word = token.text.upper()
        if word in QUERY_FORMS:
            return Analysis("query", word)
        if word in UPDATE_FORMS:
            return Analysis("update", word)
        if word not in ("BASE", "PREFIX", "VERSION"):
            break
    prologue_words = {"BASE", "PREFIX", "VERSION"}
    if all(
        t.kind in ("iri", "pname", "string")
        or (t.kind == "word" and t.text.upper() in prologue_words)
        for t in tokens
    ):
        # only a prologue (or nothing): an empty update is valid SPARQL Update, not a query
        return Analysis("update", None)
    return Analysis("unknown", None)


# A prologue of plain tokens, then a query form followed by what only a keyword can be followed
# by. Possessive (no backtracking): text it does not fit goes to the tokenizer.
_SIMPLE_PROLOGUE = re.compile(
    r"""(?:\s+|\#[^\n\r]*|(?:PREFIX|BASE|VERSION)(?=[\s<:])|[A-Za-z][\w.-]*:|:
        |<[^<>"{}|^`\\\x00-\x20]*>|"[^"\\\n\r]*"|'[^'\\\n\r]*')*+
       (SELECT|CONSTRUCT|DESCRIBE|ASK)(?=[\s*?$({<\#]|\Z)""",
    re.IGNORECASE | re.VERBOSE,
)


def _plain(text: str) -> bool:
    """True when no view of `text` can hold SERVICE, LOAD or too deep a nesting: no escape
    (so both views are the raw text), neither word anywhere (case-insensitive), and fewer
    opening brackets in the whole text than MAX_NESTING. Cheap (C-level scans)."""
    low = text.lower()
    if "\\u" in low or "service" in low or "load" in low:
        return False
    return text.count("{") + text.count("(") + text.count("[") <= MAX_NESTING


def analyse(
    text: str,
    allow_service: Sequence[str] = (),
    allow_load: Sequence[str] = (),
    base: str | None = None,
) -> Analysis:
    """Classify `text` and raise ForbiddenOperation for a SERVICE/LOAD that is not allowed.

    `base` is the base IRI the engine resolves relative IRIs against (before any BASE).
    """
    if _plain(text):
        # nothing to refuse: only the form is needed, from the first tokens (fast path)
        simple = _SIMPLE_PROLOGUE.match(text)
        if simple:
            return Analysis("query", simple.group(1).upper(), simple.start(1))
        result = _classify(tokenize(text))
        if result.form is not None:
            return result
    raw = list(tokenize(text))
    decoded_text = decode_escapes(text)
    decoded = raw if decoded_text == text else list(tokenize(decoded_text))
    _check_nesting(raw)
    _scan(raw, allow_service, allow_load, base)
    if decoded is not raw:
        _scan(decoded, allow_service, allow_load, base)
    result = _classify(raw)
    return result if result.operation != "unknown" else _classify(decoded)


def check_query(
    text: str,
    allow_service: Sequence[str] = (),
    allow_load: Sequence[str] = (),
    base: str | None = None,
) -> Analysis:
    """Guard a `query`: an update here is a 400, a forbidden SERVICE a 403."""
    if not text.strip():
        raise BadParameter("The query is empty.")
    result = analyse(text, allow_service, allow_load, base)
    if result.operation == "update":
        raise BadParameter(
            "This is a SPARQL Update, sent as a query: POST it as `update=` (form) or with "
            "Content-Type application/sparql-update."
        )
    return result


def check_update(
    text: str,
    allow_service: Sequence[str] = (),
    allow_load: Sequence[str] = (),
    base: str | None = None,
) -> Analysis:
    """Guard an `update`: a query here is a 400, a forbidden SERVICE/LOAD a 403."""
    result = analyse(text, allow_service, allow_load, base)
    if result.operation == "query":
        raise BadParameter(
            f"This is a SPARQL {result.form} query, sent as an update: send it as `query=` "
            "(GET or form) or with Content-Type application/sparql-query."
        )
    return result
