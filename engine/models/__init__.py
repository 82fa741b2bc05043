"""The normalized store: one module per aggregate, all on :class:`engine.db.Base`."""

from engine.models.accounts import AccountToken, SignInAttempt, User, UserService
from engine.models.api_keys import ApiKey, ApiKeyService
from engine.models.catalog import FlowVersion, Office, Service
from engine.models.early_reports import EarlyReport
from engine.models.enums import (
    ANSWERABLE_STATES,
    COOLDOWN_STATES,
    ContactKind,
    Decision,
    InvitationState,
    Scope,
    SuppressionReason,
)
from engine.models.invitations import DeliveryEvent, Invitation
from engine.models.kiosk import KioskDevice
from engine.models.pacing import SendPacing
from engine.models.receipts import WebhookReceipt
from engine.models.reporting import ResponseTally
from engine.models.responses import Answer, AnswerChoice, Response
from engine.models.submissions import Reflection, Submission
from engine.models.suppressions import AuditEntry, Suppression
from engine.models.surveys import Survey
from engine.models.tokens import SurveyToken
from engine.models.transactions import Contact, ServiceLevel, Transaction

COOLDOWN_STATES_VALUES = [s.value for s in COOLDOWN_STATES]

__all__ = [
    "ANSWERABLE_STATES",
    "COOLDOWN_STATES",
    "COOLDOWN_STATES_VALUES",
    "AccountToken",
    "Answer",
    "AnswerChoice",
    "ApiKey",
    "ApiKeyService",
    "AuditEntry",
    "Contact",
    "ContactKind",
    "Decision",
    "DeliveryEvent",
    "EarlyReport",
    "FlowVersion",
    "Invitation",
    "InvitationState",
    "KioskDevice",
    "Office",
    "Reflection",
    "Response",
    "ResponseTally",
    "Scope",
    "SendPacing",
    "Service",
    "ServiceLevel",
    "SignInAttempt",
    "Submission",
    "Suppression",
    "SuppressionReason",
    "Survey",
    "SurveyToken",
    "Transaction",
    "User",
    "UserService",
    "WebhookReceipt",
]
