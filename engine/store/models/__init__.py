"""The normalized store: one module per aggregate, all on :class:`engine.store.db.Base`."""

from engine.store.models.accounts import AccountToken, SignInAttempt, User, UserService
from engine.store.models.api_keys import ApiKey, ApiKeyService
from engine.store.models.catalog import FlowVersion, Office, Service
from engine.store.models.early_reports import EarlyReport
from engine.store.models.enums import (
    ANSWERABLE_STATES,
    COOLDOWN_STATES,
    ContactKind,
    Decision,
    InvitationState,
    Scope,
    SuppressionReason,
)
from engine.store.models.invitations import DeliveryEvent, Invitation
from engine.store.models.kiosk import KioskDevice
from engine.store.models.pacing import SendPacing
from engine.store.models.receipts import WebhookReceipt
from engine.store.models.reporting import ResponseTally
from engine.store.models.responses import Answer, AnswerChoice, Response
from engine.store.models.submissions import Reflection, Submission
from engine.store.models.suppressions import AuditEntry, Suppression
from engine.store.models.surveys import Survey
from engine.store.models.tokens import SurveyToken
from engine.store.models.transactions import Contact, ServiceLevel, Transaction
from engine.store.models.website import WebsiteForm

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
    "WebsiteForm",
]
