"""The closed vocabularies of the store (decisions, invitation states, scopes, suppression reasons)."""

from __future__ import annotations

from enum import StrEnum


class Decision(StrEnum):
    """SPEC §3: what intake decided for a transaction, in the order of SPEC §2 rule 6."""

    INVALID = "invalid"
    WINDOW_PASSED = "window_passed"
    PRA_EXPIRED = "pra_expired"
    SAMPLED_OUT = "sampled_out"
    OPTED_OUT = "opted_out"
    NO_CHANNEL = "no_channel"
    COOLDOWN = "cooldown"
    CAP_REACHED = "cap_reached"
    SCHEDULED = "scheduled"


class InvitationState(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    ANSWERED = "answered"
    FAILED = "failed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# States in which an invitation counts for the contact cooldown (SPEC §2 rule 3): scheduled or (maybe) sent.
COOLDOWN_STATES = (
    InvitationState.SCHEDULED,
    InvitationState.SENDING,
    InvitationState.SENT,
    InvitationState.DELIVERED,
    InvitationState.ANSWERED,
    InvitationState.UNKNOWN,
)
# States in which a customer may still answer (until ``expires_at``).
ANSWERABLE_STATES = (InvitationState.SENT, InvitationState.DELIVERED, InvitationState.ANSWERED)


class Scope(StrEnum):
    INTAKE = "intake"
    REPORTS = "reports"
    ADMIN = "admin"


class SuppressionReason(StrEnum):
    OPTED_OUT = "opted_out"
    BOUNCE = "bounce"
    CARRIER_BLOCK = "carrier_block"
    COMPLAINT = "complaint"


class ContactKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
