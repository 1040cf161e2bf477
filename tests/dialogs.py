"""Test helper: begin a dialog as an outreach would (the dialog state and its stored text), on the store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from bot.db.unit import SiteCache, load_patients
from bot.sms.channel import prepare_reply
from bot.sms.dialogs import facts_from, load_therapy, save_state
from conversations import engine
from conversations.types import FlowStart


def start_flow(
    conn: Connection, patient_id: str, flow: FlowStart, now: datetime, text: bool = True
) -> int | None:
    """Open the flow's dialog for the patient and, with ``text``, store its first text; returns that text's id."""
    patient = load_patients(conn, "id", [patient_id])[0]
    sites = SiteCache(conn)
    site = sites.get(patient.site_id)
    assert site is not None
    prescriptions, fills = load_therapy(conn, [patient_id]).get(patient_id, ([], []))
    facts = facts_from(patient, site, sites.config(site), prescriptions, fills, now)
    decision = engine.start([flow], facts, now)
    conversation = save_state(conn, patient_id, None, decision.next_state, now)
    if not text:
        return None
    body = "\n".join(r.body for r in decision.replies)
    return prepare_reply(
        conn,
        patient=patient,
        site=site,
        body=body,
        kind="outreach",
        now=now,
        conversation_id=conversation.id if conversation else None,
    )
