"""Which literals Virtuoso 7.2 stores as one value, or writes back in another form (README,
Backends).

Virtuoso keeps numbers and date/time literals as native SQL values in the object column of its
quad table, whose key is (graph, subject, predicate, object): two literals of one subject and
predicate in one graph whose *values* compare equal are one row there, whatever their
datatypes, and the row keeps the datatype and lexical form of the literal stored first. This
is not configurable (openlink/virtuoso-opensource#1322), so `kg publish` predicts these merges
from the build (`merge_key`) and checks that the backend lost exactly them.

Measured on Virtuoso 7.2.5 (Debian `virtuoso-opensource`), one pair per graph, loaded by Graph
Store PUT and by SPARQL INSERT DATA alike:
- xsd:date, xsd:dateTime, xsd:gYearMonth and xsd:gYear compare as instants: "2019-02"^^gYearMonth
  = "2019-02-01"^^date = "2019-02-01T00:00:00"^^dateTime, "2019"^^gYear = "2019-01-01"^^date;
  a timezone counts ("…T01:00:00+01:00" = "…T00:00:00Z"), and a value without one never equals
  one with one;
- xsd:integer (and its derived types), xsd:decimal, xsd:double and xsd:boolean compare as
  numbers ("2"^^integer = "2.0"^^decimal = "2"^^double, "false"^^boolean = "0"^^integer); decimal
  and double compare as doubles ("0.1"^^decimal = "0.1"^^double); xsd:float keeps its single
  precision ("0.1"^^float is not "0.1"^^double);
- language tags are lower-cased, as pyoxigraph does already (so no build holds two that differ
  only in case); plain strings, other datatypes and IRIs are kept as they are.
Lexical forms Virtuoso writes back differently (`rewritten`): non-canonical numbers ("01", "2.0"
decimal), booleans written "1"/"0", integers beyond 64 bits (they become decimals), doubles in
its own notation ("2" becomes "2.0", "1e10" "1e+10") and durations ("P1Y" becomes "12", in
months, and equals the integer 12). A pyoxigraph store holds numbers and booleans in canonical
form already, so from a build only doubles, floats and durations can be affected.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Hashable
from datetime import datetime, timedelta

import pyoxigraph as ox

XSD = "http://www.w3.org/2001/XMLSchema#"
INTEGERS = frozenset(XSD + name for name in (
    "integer", "int", "long", "short", "byte", "nonNegativeInteger", "nonPositiveInteger",
    "negativeInteger", "positiveInteger", "unsignedLong", "unsignedInt", "unsignedShort",
    "unsignedByte"))
DECIMAL, DOUBLE, FLOAT, BOOLEAN = (XSD + n for n in ("decimal", "double", "float", "boolean"))
DURATIONS = frozenset(XSD + n for n in ("duration", "dayTimeDuration", "yearMonthDuration"))
_TZ = r"(Z|[+-]\d\d:\d\d)?"
_TIMES = {
    XSD + "date": re.compile(rf"(-?\d{{4,}})-(\d\d)-(\d\d)(){_TZ}"),
    XSD + "dateTime": re.compile(rf"(-?\d{{4,}})-(\d\d)-(\d\d)T(\d\d:\d\d:\d\d(?:\.\d+)?){_TZ}"),
    XSD + "gYearMonth": re.compile(rf"(-?\d{{4,}})-(\d\d)()(){_TZ}"),
    XSD + "gYear": re.compile(rf"(-?\d{{4,}})()()(){_TZ}"),
}
_CANONICAL = {  # the lexical forms Virtuoso writes back unchanged
    "integer": re.compile(r"0|-?[1-9]\d*"),
    "decimal": re.compile(r"0|-?[1-9]\d*|-?(0|[1-9]\d*)\.\d*[1-9]"),
    "double": re.compile(r"-?(0|[1-9]\d{0,5})\.(0|\d{0,5}[1-9])"),
}


def _instant(match: re.Match[str]) -> tuple[bool, datetime] | None:
    year, month, day, clock, zone = match.groups()
    if not 1 <= int(year) <= 9999:
        return None
    hour, minute, second = (clock or "00:00:00").split(":")
    try:
        moment = datetime(int(year), int(month or 1), int(day or 1), int(hour), int(minute),
                          0) + timedelta(seconds=float(second))
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return bool(zone), moment


def merge_key(literal: ox.Literal) -> Hashable | None:
    """The value Virtuoso compares `literal` by, or None when it keeps the literal as it is
    (two literals of one subject, predicate and graph with equal keys are one triple there)."""
    datatype, text = literal.datatype.value, literal.value
    try:
        if datatype in INTEGERS:
            return ("number", int(text))
        if datatype in (DECIMAL, DOUBLE):
            return ("number", float(text))
        if datatype == FLOAT:
            return ("number", struct.unpack("f", struct.pack("f", float(text)))[0])
    except (ValueError, OverflowError):
        return None
    if datatype == BOOLEAN:
        return ("number", 1) if text in ("true", "1") else ("number", 0) if text in (
            "false", "0") else None
    pattern = _TIMES.get(datatype)
    if pattern is not None and (match := pattern.fullmatch(text)):
        instant = _instant(match)
        return None if instant is None else ("time", *instant)
    return None


def rewritten(literal: ox.Literal) -> bool:
    """Whether Virtuoso writes `literal` back in another lexical form (or datatype)."""
    datatype, text = literal.datatype.value, literal.value
    if datatype in DURATIONS:
        return True
    if datatype == BOOLEAN:
        return text not in ("true", "false")
    if datatype in INTEGERS:
        return not _CANONICAL["integer"].fullmatch(text) or abs(int(text)) >= 2**63
    if datatype == DECIMAL:
        return not _CANONICAL["decimal"].fullmatch(text)
    if datatype in (DOUBLE, FLOAT):
        return not _CANONICAL["double"].fullmatch(text)
    return False
