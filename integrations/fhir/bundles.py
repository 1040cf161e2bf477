"""FHIR R4 answers to an inbound Bundle: the OperationOutcome of a rejected one, a batch's batch-response."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from integrations.fhir.inbound import Issue, ReadBundle
from integrations.fhir.store import StoredBundle

__all__ = ["batch_response", "outcome"]

_CREATED = {"created": "201 Created", "updated": "200 OK", "unchanged": "200 OK", "voided": "200 OK"}


def outcome(issues: list[Issue]) -> dict[str, Any]:
    """An OperationOutcome (as JSON) of the issues, each pointing at its entry by FHIR path."""
    resource = OperationOutcome.model_validate(
        {"resourceType": "OperationOutcome", "issue": [i.issue for i in issues]}
    )
    return resource.model_dump(mode="json", exclude_none=True)


def _info(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
    }


def _entry(index: int, read: ReadBundle, stored: StoredBundle, skipped: dict[int, str]) -> dict[str, Any]:
    issues = [i for i in read.issues + stored.issues if i.index == index]
    if issues:
        not_found = all(i.issue.get("code") == "not-found" for i in issues)
        status = "404 Not Found" if not_found else "422 Unprocessable Entity"
        return {"response": {"status": status, "outcome": outcome(issues)}}
    done = stored.stored.get(index)
    if done is not None:
        response: dict[str, Any] = {"status": _CREATED[done.outcome], "location": done.location}
        if done.outcome != "created":
            response["outcome"] = _info(f"{done.outcome}: {done.location}")
        return {"response": response}
    note = skipped.get(index, "read (a Medication names a drug), not stored")
    return {"response": {"status": "200 OK", "outcome": _info(f"not imported: {note}")}}


def batch_response(read: ReadBundle, stored: StoredBundle) -> dict[str, Any]:
    """The batch-response Bundle: one entry per request entry, in order, each with its status."""
    skipped = dict(read.rows.skipped_entries)
    entries = [_entry(index, read, stored, skipped) for index in range(read.entries)]
    bundle = Bundle.model_validate({"resourceType": "Bundle", "type": "batch-response", "entry": entries})
    return bundle.model_dump(mode="json", exclude_none=True)
