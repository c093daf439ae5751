"""How an entity page groups relations: by what a researcher asks of each kind of thing.

Data, not code: a group lists outgoing predicates and incoming ones (statements pointing at
the entity), as CURIEs. A group shows only when the entity has statements in it, so one
table serves agreements, actors, events, posts and commitments alike; whatever no group
claims is shown last under "Other properties" and "Referenced by".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroupSpec:
    title: str
    out: tuple[str, ...] = ()
    inc: tuple[str, ...] = ()


GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec("Parties and signatories",
              out=("kg:party", "kg:signatory", "kg:committedParty", "kg:issuedBy"),
              inc=()),
    GroupSpec("Dates",
              out=("kg:proposedOn", "kg:adoptedOn", "kg:signedOn", "kg:provisionallyAppliedFrom",
                   "kg:enteredIntoForceOn", "kg:date", "kg:startDate", "kg:endDate", "dct:date",
                   "dct:issued", "eli:date_document", "kg:frequency")),
    GroupSpec("Status history", out=("kg:status", "kg:stage", "kg:concernsAgreement"),
              inc=("kg:concernsAgreement",)),
    GroupSpec("Commitment",
              out=("kg:paragraphNumber", "kg:commitmentOf", "kg:modality", "kg:modalityText",
                   "kg:area", "kg:names")),
    GroupSpec("Areas", out=("kg:coversArea", "dct:subject"), inc=("kg:area", "kg:coversArea")),
    GroupSpec("Agreements", out=("kg:partyTo",), inc=("kg:signatory", "kg:committedParty")),
    GroupSpec("Dialogues and events",
              out=("kg:participatedIn", "kg:participant", "kg:mechanism", "kg:level",
                   "kg:place", "sem:subEventOf"),
              inc=("kg:participant", "kg:mechanism", "kg:place", "sem:subEventOf")),
    GroupSpec("Offices", out=("kg:holdsPost", "kg:office", "kg:holder", "kg:postIn"),
              inc=("kg:holder", "kg:office", "kg:postIn", "kg:holdsPost")),
    GroupSpec("Memberships and parts",
              out=("kg:memberOf", "kg:hasMember", "kg:partOf", "kg:hasPart", "kg:reportsTo"),
              inc=("kg:reportsTo",)),
    GroupSpec("Related agreements and documents",
              out=("kg:buildsOn", "kg:refersTo", "kg:establishedBy", "kg:fundedBy",
                   "dct:relation", "dct:isPartOf"),
              inc=("kg:buildsOn", "kg:refersTo", "kg:commitmentOf", "kg:names",
                   "kg:establishedBy", "kg:fundedBy", "kg:issuedBy")),
)

# How an incoming link reads from the entity's side ("Lifecycle events", not "concerns").
INCOMING_LABELS: dict[str, str] = {
    "kg:concernsAgreement": "lifecycle events",
    "kg:participant": "events it took part in",
    "kg:mechanism": "meetings of this dialogue",
    "kg:place": "events held here",
    "sem:subEventOf": "sub-events",
    "kg:holder": "tenures",
    "kg:office": "tenures of this post",
    "kg:postIn": "posts in it",
    "kg:holdsPost": "held by",
    "kg:reportsTo": "reported to by",
    "kg:area": "commitments under this area",
    "kg:coversArea": "covered by",
    "kg:signatory": "signatory of",
    "kg:committedParty": "committed by",
    "kg:buildsOn": "built on by",
    "kg:refersTo": "referred to by",
    "kg:commitmentOf": "commitments",
    "kg:names": "named in",
    "kg:establishedBy": "establishes",
    "kg:fundedBy": "funds",
    "kg:issuedBy": "issued",
}

# Shown in the page head, not as rows.
HEAD_PREDICATES = ("rdf:type", "rdfs:label", "skos:prefLabel", "skos:altLabel",
                   "rdfs:comment", "skos:definition", "dct:description")
SUMMARY_PREDICATES = ("skos:definition", "rdfs:comment", "dct:description")
# Facts shown beside a neighbour (an event's date and stage, a tenure's office).
NOTE_PREDICATES = ("kg:date", "kg:startDate", "kg:endDate", "kg:signedOn", "kg:stage",
                   "kg:office", "kg:holder")
# The date that dates a thing in a one-line summary, in order of preference.
SUMMARY_DATES = (("kg:signedOn", "signed"), ("kg:adoptedOn", "adopted"),
                 ("kg:date", "on"), ("kg:startDate", "from"), ("kg:proposedOn", "proposed"))
