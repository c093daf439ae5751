"""The curated extraction (data/extraction/*.yaml) checked and turned into evidenced statements.

Every problem is collected with its file, entity id and fact index, and reported together, so
one `kg validate` run lists everything a curator has to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import yaml

from kg.build.ontology import Ontology
from kg.build.quotes import find_quote
from kg.build.segment import Passage
from kg.build.sources import Document
from kg.build.terms import RDF_TYPE, RDFS_LABEL, SKOS_ALT, date_literal, plain_literal
from kg.errors import BuildError

ENTITY_KEYS = {"id", "type", "label", "alt", "quote", "at", "facts", "note", "comment"}
FACT_KEYS = {"p", "o", "v", "quote", "at", "lang", "note", "comment"}
_ID = re.compile(r"[a-z][a-z0-9-]*/[A-Za-z0-9][A-Za-z0-9._/-]*")


@dataclass(frozen=True)
class Evidence:
    """A verified quote: where in which document a statement is said."""

    doc: Document
    start: int
    end: int

    @property
    def passage(self) -> Passage:
        return self.doc.passage_for(self.start, self.end)

    @property
    def text(self) -> str:
        return self.doc.text[self.start : self.end]


@dataclass(frozen=True)
class Statement:
    subject: ox.NamedNode
    predicate: ox.NamedNode
    object: ox.NamedNode | ox.Literal
    evidence: Evidence


@dataclass
class Entity:
    id: str
    iri: ox.NamedNode
    label: str
    alts: list[str] = field(default_factory=list)
    docs: list[Document] = field(default_factory=list)


@dataclass
class Extraction:
    entities: dict[str, Entity] = field(default_factory=dict)
    statements: list[Statement] = field(default_factory=list)


# libyaml's parser when PyYAML has it: ten times faster than the pure-Python one, same data.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlLoader(_SafeLoader):
    """SafeLoader keeping timestamps as text: an impossible date becomes our error, not PyYAML's."""


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar)


class _Errors(list[str]):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Loader:
    def __init__(self, docs: list[Document], onto: Ontology, root: Path) -> None:
        self.docs = {d.file: d for d in docs}
        self.onto = onto
        self.iris = onto.iris
        self.root = root
        self.errors = _Errors()
        self.out = Extraction()
        self._quote_cache: dict[tuple[str, str, str | None], tuple[int, int] | str] = {}

    # -- reading ------------------------------------------------------------------------
    def read(self, files: list[Path]) -> list[tuple[str, Document, list[dict[str, Any]]]]:
        parsed = []
        for path in files:
            name = self._name(path)
            try:
                data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
            except (yaml.YAMLError, ValueError) as exc:
                self.errors.add(name, f"malformed YAML: {exc}".replace("\n", " "))
                continue
            if not isinstance(data, dict):
                self.errors.add(
                    name, "malformed: expected a mapping with 'document' and 'entities'"
                )
                continue
            doc = self.docs.get(str(data.get("document")))
            if doc is None:
                self.errors.add(name, f"document {data.get('document')!r} is not in data/sources")
                continue
            extra = set(data) - {"document", "entities", "note", "comment"}
            if extra:
                self.errors.add(name, f"unknown top-level keys {sorted(extra)}")
            entities = data.get("entities") or []
            if not isinstance(entities, list):
                self.errors.add(name, "'entities' must be a list")
                continue
            good = []
            for i, entry in enumerate(entities):
                if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                    self.errors.add(f"{name}: entity #{i}", "malformed entry: needs an 'id'")
                elif not _ID.fullmatch(entry["id"]):
                    self.errors.add(
                        f"{name}: entity {entry['id']}", "malformed id: expected <kind>/<slug>"
                    )
                else:
                    good.append(entry)
            parsed.append((name, doc, good))
        return parsed

    def _name(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    # -- declarations ---------------------------------------------------------------------
    def declare(self, parsed: list[tuple[str, Document, list[dict[str, Any]]]]) -> None:
        first_label: dict[str, tuple[str, str]] = {}
        for name, doc, entries in parsed:
            for entry in entries:
                eid, label = entry["id"], entry.get("label")
                where = f"{name}: entity {eid}"
                if not isinstance(label, str) or not label.strip():
                    self.errors.add(where, "no label")
                    continue
                if eid in first_label and first_label[eid][0] != label:
                    other_label, other_file = first_label[eid]
                    self.errors.add(
                        where, f"label {label!r} conflicts with {other_label!r} in {other_file}"
                    )
                    continue
                first_label.setdefault(eid, (label, name))
                ent = self.out.entities.setdefault(eid, Entity(eid, self.iris.entity(eid), label))
                if doc not in ent.docs:
                    ent.docs.append(doc)
                for alt in _as_list(entry.get("alt")):
                    if (
                        isinstance(alt, str)
                        and alt.strip()
                        and alt not in ent.alts
                        and alt != label
                    ):
                        ent.alts.append(alt)

    # -- evidence -------------------------------------------------------------------------
    def locate(self, doc: Document, quote: Any, at: Any) -> Evidence | str:
        """The verified quote, or an error message."""
        if not isinstance(quote, str) or not quote.strip():
            return "no quote"
        key = (doc.file, quote, None if at is None else str(at))
        hit = self._quote_cache.get(key)
        if hit is None:
            hit = self._locate(doc, quote, at)
            self._quote_cache[key] = hit
        return hit if isinstance(hit, str) else Evidence(doc, *hit)

    @staticmethod
    def _locate(doc: Document, quote: str, at: Any) -> tuple[int, int] | str:
        anywhere = find_quote(doc.text, quote)
        if anywhere is None:
            return f"quote not found in {doc.file}: {quote!r}"
        if at is None:
            return anywhere
        try:
            passage = doc.locate(str(at))
        except LookupError as exc:
            return str(exc)
        inside = find_quote(doc.text, quote, passage.start, passage.end)
        if inside is None:
            found = doc.passage_for(*anywhere).locator
            return f"quote not inside its locator {at!r} (found in {found}): {quote!r}"
        return inside

    # -- entities and facts ---------------------------------------------------------------
    def build(self, parsed: list[tuple[str, Document, list[dict[str, Any]]]]) -> None:
        for name, doc, entries in parsed:
            for entry in entries:
                self.entity(name, doc, entry)

    def entity(self, name: str, doc: Document, entry: dict[str, Any]) -> None:
        eid = entry["id"]
        where = f"{name}: entity {eid}"
        extra = set(entry) - ENTITY_KEYS
        if extra:
            self.errors.add(where, f"unknown keys {sorted(extra)}")
        ent = self.out.entities.get(eid)
        evidence = self.locate(doc, entry.get("quote"), entry.get("at"))
        if isinstance(evidence, str):
            self.errors.add(where, evidence)
        types = _as_list(entry.get("type"))
        if not types:
            self.errors.add(where, "no type")
        for t in types:
            iri = self.onto.class_iri(str(t))
            if iri is None:
                self.errors.add(where, f"unknown class {t!r}")
            elif ent and isinstance(evidence, Evidence):
                self.emit(ent.iri, RDF_TYPE, ox.NamedNode(iri), evidence)
        if ent is None or not isinstance(evidence, Evidence):
            return
        if ent.label == entry.get("label"):
            self.emit(ent.iri, RDFS_LABEL, ox.Literal(ent.label, language="en"), evidence)
        for alt in _as_list(entry.get("alt")):
            self.alt(where, ent, doc, alt)
        facts = entry.get("facts") or []
        if not isinstance(facts, list):
            self.errors.add(where, "'facts' must be a list")
            return
        for j, fact in enumerate(facts):
            self.fact(f"{where}: fact {j}", ent, doc, fact, entry)

    def alt(self, where: str, ent: Entity, doc: Document, alt: Any) -> None:
        if not isinstance(alt, str) or not alt.strip():
            self.errors.add(where, f"alt label {alt!r} is not a string")
            return
        for candidate in [doc, *(d for d in self.docs.values() if d is not doc)]:
            span = find_quote(candidate.text, alt, word_bounded=True)
            if span:
                self.emit(
                    ent.iri, SKOS_ALT, ox.Literal(alt, language="en"), Evidence(candidate, *span)
                )
                return
        self.errors.add(where, f"alt label {alt!r} occurs in no source document")

    def fact(
        self, where: str, ent: Entity, doc: Document, fact: Any, entry: dict[str, Any]
    ) -> None:
        if not isinstance(fact, dict):
            self.errors.add(where, "malformed fact: expected a mapping with p and o or v")
            return
        extra = set(fact) - FACT_KEYS
        if extra:
            self.errors.add(where, f"unknown keys {sorted(extra)}")
        p = fact.get("p")
        where = f"{where} ({p})"
        prop = self.onto.property_iri(str(p)) if isinstance(p, str) else None
        if prop is None:
            self.errors.add(where, f"unknown property {p!r}")
        if ("o" in fact) == ("v" in fact):
            self.errors.add(where, "needs exactly one of o (entity) or v (literal)")
            return
        obj = self.object(where, fact["o"]) if "o" in fact else self.value(where, str(p), fact)
        if prop in self.onto.datatype_properties and "o" in fact:
            self.errors.add(where, f"{p} takes a literal (v:), not o:")
            obj = None
        if "quote" in fact:
            evidence = self.locate(doc, fact.get("quote"), fact.get("at"))
        else:
            evidence = self.locate(doc, entry.get("quote"), fact.get("at", entry.get("at")))
        if isinstance(evidence, str):
            self.errors.add(where, evidence)
            return
        if prop and obj is not None:
            self.emit(ent.iri, ox.NamedNode(prop), obj, evidence)

    def object(self, where: str, o: Any) -> ox.NamedNode | None:
        if not isinstance(o, str):
            self.errors.add(where, f"object {o!r} is not an id")
            return None
        if o.startswith("<") and o.endswith(">"):
            iri = o[1:-1]
            if not re.match(r"[a-z][a-z0-9+.-]*:\S+$", iri):
                self.errors.add(where, f"object {o} is not an absolute IRI")
                return None
            return ox.NamedNode(iri)
        if o in self.out.entities:
            return self.out.entities[o].iri
        iri = self.iris.entity(o)
        if iri.value in self.onto.concepts:
            return iri
        if ":" in o and "/" not in o.split(":", 1)[0]:
            expanded = self.onto.expand(o)
            if expanded and not expanded.startswith(self.iris.kg):
                return ox.NamedNode(expanded)
        self.errors.add(
            where,
            f"unknown object id {o!r} (declared in no extraction file, not a vocabulary concept)",
        )
        return None

    def value(self, where: str, p: str, fact: dict[str, Any]) -> ox.Literal | None:
        v, lang = fact["v"], fact.get("lang")
        if v is None or isinstance(v, dict | list):
            self.errors.add(where, f"value {v!r} is not a literal")
            return None
        if self.onto.is_date_property(p):
            lit = date_literal(v)
            if lit is None:
                self.errors.add(where, f"{v!r} is not a date (YYYY-MM-DD, YYYY-MM or YYYY)")
            return lit
        if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", v.strip()):
            lit = date_literal(v)
            if lit is None:
                self.errors.add(where, f"{v!r} is not a date")
            return lit
        return plain_literal(v, str(lang) if lang else None)

    def emit(
        self, s: ox.NamedNode, p: ox.NamedNode, o: ox.NamedNode | ox.Literal, evidence: Evidence
    ) -> None:
        self.out.statements.append(Statement(s, p, o, evidence))


def extraction_files(extraction_dir: Path) -> list[Path]:
    return sorted(extraction_dir.glob("*.yaml")) + sorted(extraction_dir.glob("*.yml"))


def load_extraction(
    extraction_dir: Path, docs: list[Document], onto: Ontology, root: Path | None = None
) -> Extraction:
    """Check every extraction file and return its statements; BuildError lists all problems."""
    loader = _Loader(docs, onto, (root or extraction_dir.parent.parent).resolve())
    parsed = loader.read(extraction_files(extraction_dir))
    loader.declare(parsed)
    loader.build(parsed)
    if loader.errors:
        raise BuildError(
            f"{len(loader.errors)} problem(s) in the extraction:\n" + "\n".join(loader.errors),
            errors=list(loader.errors),
        )
    return loader.out
