"""The email channel sends through the real ``sendgrid`` SDK: to Prism (SendGrid's own contract) and to a stand-in.

Prism proves every request the channel makes is one SendGrid's published contract accepts, and that it refuses a
request that breaks it; a recording proxy in front of it counts the Mail Send calls (2,500 invitations → 3). The
stand-in of our own answers what the contract does not describe: 429, 5xx, a 400 on a batch, a hang after the
request went out. The message itself (HTML, text, headers, languages) is checked on the requests as sent.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
import requests
from sqlalchemy import select

from channels.email import NOT_CONFIGURED, EmailChannel
from channels.email.message import personalize, render
from engine.channels import Channel, ChannelRegistry, Outcome, Outgoing
from engine.store.models import ContactKind, Invitation
from engine.surveys import tokens
from tests import email_support
from tests.email_support import (
    API_KEY,
    FROM_EMAIL,
    MAIL_SEND,
    PUBLIC_URL,
    SENDER,
    EmailStack,
    MailStandIn,
    Seen,
    closed_port_url,
    sendgrid_error,
)

# The fixtures these tests take (pytest finds them by name in the module).
email_config_dir = email_support.email_config_dir
email_stack = email_support.email_stack
mail_stand_in = email_support.mail_stand_in
prism_proxy = email_support.prism_proxy
sendgrid_prism = email_support.sendgrid_prism
webhook_signer = email_support.webhook_signer
_shared_mail_stand_in = email_support._shared_mail_stand_in
_shared_prism_proxy = email_support._shared_prism_proxy

# Tests of the channel alone (no dispatch): one database is enough.
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SURVEY_LINK = re.compile(re.escape(PUBLIC_URL) + r"/s/([A-Za-z0-9_-]{22,64})")


# -- helpers -----------------------------------------------------------------------------------------------------


def outgoing(stack: EmailStack, n: int, *, language: str = "en", service: str = "email-first",
             unsubscribe: bool = True, address: str | None = None) -> Outgoing:  # fmt: skip
    """An invitation as the dispatcher hands it over (for tests of the channel alone)."""
    config = stack.rt.catalog.services[service]
    token = f"tok{n:04d}" + "A" * 19
    return Outgoing(
        invitation_id=uuid.uuid4(),
        service=config,
        flow=stack.rt.catalog.flow_of(config),
        language=language,
        contact_kind=ContactKind.EMAIL,
        address=address or f"person{n}@example.com",
        expires_at=datetime.now(UTC) + timedelta(hours=48),
        test=False,
        survey_url=f"{PUBLIC_URL}/s/{token}",
        unsubscribe_url=f"{PUBLIC_URL}/u/unsub{n:04d}" + "B" * 17 if unsubscribe else None,
    )


def content(seen: Seen, kind: str) -> str:
    return next(c["value"] for c in seen.json()["content"] if c["type"] == kind)


def delivered_html(seen: Seen, index: int = 0) -> str:
    """The HTML one recipient gets: the request's content with that personalization's substitutions applied."""
    return personalize(content(seen, "text/html"), seen.personalizations[index]["substitutions"])


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.roles: list[str] = []
        self.html_lang: str | None = None
        self.images = 0
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.html_lang = values.get("lang")
        if tag == "table":
            self.roles.append(values.get("role") or "")
        if tag == "img":
            self.images += 1
        if tag == "a":
            self._href, self._text = values.get("href"), []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((" ".join("".join(self._text).split()), self._href))
            self._href = None


def parse(html: str) -> Links:
    found = Links()
    found.feed(html)
    return found


# -- the contract ------------------------------------------------------------------------------------------------


@ONE_DATABASE
def test_the_channel_satisfies_the_engine_contract(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    channel = stack.channel
    assert isinstance(channel, Channel)
    assert (channel.name, channel.contact_kinds, channel.consent, channel.quiet_hours) == (
        "email", (ContactKind.EMAIL,), None, False)  # fmt: skip
    assert (channel.suppressed_by, channel.test_only, channel.batch_size) == (("email",), False, 1000)
    assert EmailChannel.wants_unsubscribe_link is True
    registry = ChannelRegistry()
    registry.register(channel)
    assert registry.for_contact_kind(ContactKind.EMAIL) == ["email"]
    assert registry.blocks("email", {"email"}) and not registry.blocks("email", {"sms"})


def test_without_sendgrid_settings_nothing_is_sent(email_stack, mail_stand_in):
    stack = email_stack(None)
    invitation_id = stack.schedule("NC-1", "nc@example.com")
    stack.dispatch()
    invitation = stack.invitation(invitation_id)
    assert invitation.state.value == "failed" and invitation.reason == NOT_CONFIGURED
    assert NOT_CONFIGURED.startswith("sendgrid not configured")
    assert mail_stand_in.requests == []


# -- Prism: SendGrid's contract ----------------------------------------------------------------------------------


def test_prism_accepts_every_request_the_channel_makes(email_stack, prism_proxy):
    stack = email_stack(prism_proxy.base_url)
    ids = [stack.schedule("PR-1", "pr1@example.com"), stack.schedule("PR-2", "pr2@example.com", language="es"),
           stack.schedule("PR-3", "pr3@example.com", service="email-drivers")]  # fmt: skip
    stats = stack.dispatch()
    assert stats.outcomes.get("sent") == 3, dict(stats.outcomes)
    sends = prism_proxy.mail_sends()
    assert len(sends) == 3 and {s.status for s in sends} == {202}  # one group per service and language
    for seen in sends:
        assert seen.headers["Authorization"] == f"Bearer {API_KEY}"
        body = seen.json()
        assert body["from"]["email"] == FROM_EMAIL
        assert body["from"]["name"] in (SENDER["name"], "Departamento de Estado de EE. UU.")
        assert body["reply_to"]["email"] == SENDER["reply_to"]
        assert body["tracking_settings"] == {"click_tracking": {"enable": False, "enable_text": False},
                                             "open_tracking": {"enable": False},
                                             "subscription_tracking": {"enable": False}}  # fmt: skip
        assert "custom_args" not in body  # the contract types a top-level custom_args as a string
        assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
        assert "template_id" not in body  # rendered by the engine, not a SendGrid stored template
    for invitation_id in ids:
        invitation = stack.invitation(invitation_id)
        assert invitation.state.value == "sent" and invitation.provider_id == str(invitation_id)


def test_prism_is_strict(sendgrid_prism):
    good = {
        "personalizations": [{"to": [{"email": "a@example.com"}], "custom_args": {"invitation_id": "x"}}],
        "from": {"email": FROM_EMAIL},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "v"}],
    }
    auth = {"Authorization": f"Bearer {API_KEY}"}
    assert requests.post(sendgrid_prism + MAIL_SEND, json=good, headers=auth, timeout=10).status_code == 202
    # custom_args at the top level as an object: the contract types it as a string.
    wrong_type = {**good, "custom_args": {"invitation_id": "x"}}
    assert requests.post(sendgrid_prism + MAIL_SEND, json=wrong_type, headers=auth, timeout=10).status_code == 400
    no_personalizations = {k: v for k, v in good.items() if k != "personalizations"}
    assert requests.post(sendgrid_prism + MAIL_SEND, json=no_personalizations, headers=auth,
                         timeout=10).status_code == 400  # fmt: skip
    assert requests.post(sendgrid_prism + MAIL_SEND, json=good, timeout=10).status_code == 401


def test_2500_invitations_go_out_in_three_requests_each_with_its_own_links(email_stack, prism_proxy):
    stack = email_stack(prism_proxy.base_url)
    ids = stack.schedule_many(2500, "BULK")
    stats = stack.dispatch(batch=1000)
    assert stats.outcomes.get("sent") == 2500, dict(stats.outcomes)
    sends = prism_proxy.mail_sends()
    assert [len(s.personalizations) for s in sends] == [1000, 1000, 500]
    assert {s.status for s in sends} == {202}
    seen_ids: set[str] = set()
    with stack.rt.sessions() as session:
        for seen in sends:
            for p in seen.personalizations:
                invitation_id = p["custom_args"]["invitation_id"]
                seen_ids.add(invitation_id)
                link = p["substitutions"]["-survey_link-"]
                token = SURVEY_LINK.fullmatch(link)
                assert token, link
                found = tokens.invitation_for(session, token.group(1))
                assert found is not None and str(found.id) == invitation_id  # this recipient's own survey
                assert p["substitutions"]["-rating_link_4-"] == f"{link}?q=satisfaction&a=4"
    assert seen_ids == {str(i) for i in ids}
    assert set(stack.states(ids).values()) == {"sent"}


# -- the stand-in: what the contract does not describe -----------------------------------------------------------


def test_a_429_puts_the_batch_back_and_nothing_is_lost(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    ids = [stack.schedule(f"RL-{n}", f"rl{n}@example.com") for n in range(3)]
    mail_stand_in.script.append(sendgrid_error(429, "too many requests", **{"Retry-After": "120"}))
    now = datetime.now(UTC) + timedelta(seconds=1)
    stats = stack.dispatch(now)
    assert stats.outcomes.get("retry") == 3
    assert len(mail_stand_in.mail_sends()) == 1  # one request for the group, one 429 for all
    for invitation_id in ids:
        invitation = stack.invitation(invitation_id)
        assert invitation.state.value == "scheduled" and invitation.attempts == 1
        assert invitation.send_at.replace(tzinfo=UTC) >= now + timedelta(seconds=119)
    later = stack.dispatch(now + timedelta(minutes=3))
    assert later.outcomes.get("sent") == 3
    assert set(stack.states(ids).values()) == {"sent"}
    assert len(mail_stand_in.mail_sends()) == 2


@pytest.mark.parametrize("reply", [sendgrid_error(500, "internal"), sendgrid_error(503, "unavailable"), "refused"])
def test_a_5xx_or_a_refused_connection_is_retried(email_stack, mail_stand_in, reply):
    base_url = closed_port_url() if reply == "refused" else mail_stand_in.base_url
    if reply != "refused":
        mail_stand_in.script.append(reply)
    stack = email_stack(base_url)
    invitation_id = stack.schedule("RT-1", "rt1@example.com")
    stats = stack.dispatch()
    assert stats.outcomes.get("retry") == 1, dict(stats.outcomes)
    invitation = stack.invitation(invitation_id)
    assert invitation.state.value == "scheduled" and invitation.provider_id is None


def test_a_400_on_a_batch_is_split_until_the_bad_personalization_stands_alone(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    ids = [stack.schedule(f"SP-{n}", f"sp{n}@example.com") for n in range(8)]
    bad = stack.schedule("SP-BAD", "reject-me@example.com")
    mail_stand_in.reject_marker = "reject-me@example.com"
    stack.dispatch()
    states = stack.states([*ids, bad])
    assert states.pop(bad) == "failed"
    assert set(states.values()) == {"sent"}
    assert "sendgrid 400" in (stack.invitation(bad).reason or "")
    sends = mail_stand_in.mail_sends()
    sizes = [len(s.personalizations) for s in sends]
    assert sizes[0] == 9 and sizes.count(1) >= 1 and len(sends) <= 2 * 4 + 1  # halving: about 2·log2(n) calls
    accepted = [p["custom_args"]["invitation_id"] for s in sends if s.status == 202 for p in s.personalizations]
    assert sorted(accepted) == sorted(str(i) for i in ids)  # each good one accepted exactly once


def test_a_400_that_names_the_personalization_fails_it_alone(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    ids = [stack.schedule(f"NP-{n}", f"np{n}@example.com") for n in range(5)]
    mail_stand_in.script.append(
        sendgrid_error(400, "Does not contain a valid address.", "personalizations.2.to.0.email")
    )
    stack.dispatch()
    first, second = mail_stand_in.mail_sends()
    named = first.personalizations[2]["custom_args"]["invitation_id"]
    assert len(second.personalizations) == 4 and named not in str(second.body)
    states = stack.states(ids)
    assert states.pop(uuid.UUID(named)) == "failed" and set(states.values()) == {"sent"}


def test_a_400_about_the_request_itself_fails_the_group_without_splitting(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    ids = [stack.schedule(f"RQ-{n}", f"rq{n}@example.com") for n in range(4)]
    mail_stand_in.script.append(sendgrid_error(400, "The from address does not match a verified Sender Identity.",
                                               "from.email"))  # fmt: skip
    stack.dispatch()
    assert len(mail_stand_in.mail_sends()) == 1
    assert set(stack.states(ids).values()) == {"failed"}


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_api_key_fails_the_group_as_configuration(email_stack, mail_stand_in, status):
    stack = email_stack(mail_stand_in.base_url)
    ids = [stack.schedule(f"AK-{n}", f"ak{n}@example.com") for n in range(2)]
    mail_stand_in.script.append(sendgrid_error(status, "The provided authorization grant is invalid"))
    stack.dispatch()
    assert len(mail_stand_in.mail_sends()) == 1
    for invitation_id in ids:
        invitation = stack.invitation(invitation_id)
        assert invitation.state.value == "failed" and "SENDGRID_API_KEY" in (invitation.reason or "")


@pytest.mark.parametrize("reply", ["hang", "close"])
def test_no_answer_after_the_request_went_out_is_unknown_and_never_resent(email_stack, mail_stand_in, reply):
    stack = email_stack(mail_stand_in.base_url, timeout=0.5)
    ids = [stack.schedule(f"TO-{n}", f"to{n}@example.com") for n in range(3)]
    mail_stand_in.script.append(reply)
    stats = stack.dispatch()
    assert stats.outcomes.get("unknown") == 3, dict(stats.outcomes)
    assert set(stack.states(ids).values()) == {"unknown"}
    for invitation_id in ids:  # SendGrid may hold it: its events will name the invitation and settle it
        assert stack.invitation(invitation_id).provider_id == str(invitation_id)
    again = stack.dispatch(datetime.now(UTC) + timedelta(hours=1))
    assert again.claimed == 0 and len(mail_stand_in.mail_sends()) == 1


@ONE_DATABASE
def test_one_request_per_service_flow_and_language(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    batch = [outgoing(stack, 0), outgoing(stack, 1, language="es"), outgoing(stack, 2),
             outgoing(stack, 3, service="email-drivers"), outgoing(stack, 4, language="es")]  # fmt: skip
    results = stack.channel.send(batch)
    assert [r.invitation_id for r in results] == [i.invitation_id for i in batch]
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert [r.provider_id for r in results] == [str(i.invitation_id) for i in batch]
    sends = mail_stand_in.mail_sends()
    recipients = sorted(tuple(p["to"][0]["email"] for p in s.personalizations) for s in sends)
    assert recipients == [
        ("person0@example.com", "person2@example.com"),
        ("person1@example.com", "person4@example.com"),
        ("person3@example.com",),
    ]


@ONE_DATABASE
def test_an_unknown_language_falls_back_to_the_flows_first(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    results = stack.channel.send([outgoing(stack, 0, language="fr")])
    assert results[0].outcome is Outcome.SENT
    assert 'lang="en"' in content(mail_stand_in.mail_sends()[0], "text/html")


# -- the message -------------------------------------------------------------------------------------------------


@ONE_DATABASE
def test_each_personalization_carries_its_links_custom_args_and_list_unsubscribe(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    batch = [outgoing(stack, n) for n in range(3)]
    stack.channel.send(batch)
    (seen,) = mail_stand_in.mail_sends()
    for item, p in zip(batch, seen.personalizations, strict=True):
        assert p["to"] == [{"email": item.address}]
        assert p["custom_args"] == {"invitation_id": str(item.invitation_id)}
        assert p["headers"] == {"List-Unsubscribe": f"<{item.unsubscribe_url}>",
                                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}  # fmt: skip
        assert p["substitutions"]["-survey_link-"] == item.survey_url
        assert p["substitutions"]["-unsubscribe_link-"] == item.unsubscribe_url
        assert {p["substitutions"][f"-rating_link_{v}-"] for v in range(1, 6)} == {
            f"{item.survey_url}?q=satisfaction&a={v}" for v in range(1, 6)}  # fmt: skip


@ONE_DATABASE
def test_the_html_part(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    item = outgoing(stack, 7)
    stack.channel.send([item])
    (seen,) = mail_stand_in.mail_sends()
    html = delivered_html(seen)
    page = parse(html)
    assert page.html_lang == "en" and page.images == 0
    assert page.roles and set(page.roles) == {"presentation"}
    assert '<meta name="color-scheme" content="light dark">' in html and "prefers-color-scheme: dark" in html
    ratings = [(text, href) for text, href in page.links if "?q=" in href]
    assert ratings == [
        ("1 – Strongly disagree", f"{item.survey_url}?q=satisfaction&a=1"),
        ("2 – Disagree", f"{item.survey_url}?q=satisfaction&a=2"),
        ("3 – Neither agree nor disagree", f"{item.survey_url}?q=satisfaction&a=3"),
        ("4 – Agree", f"{item.survey_url}?q=satisfaction&a=4"),
        ("5 – Strongly agree", f"{item.survey_url}?q=satisfaction&a=5"),
    ]
    assert ("Take the survey", item.survey_url) in page.links
    assert ("Unsubscribe from survey emails", item.unsubscribe_url) in page.links
    text = re.sub(r"<[^>]+>", " ", html)
    for words in ("Department of State would like to hear how your Passport Renewal went",
                  "about 2 minutes", "I am satisfied with the service I received from Passport Renewal",
                  "Paperwork Reduction Act statement", "OMB control number: 1090-0011. Expires June 30, 2028.",
                  "A federal agency may not conduct or sponsor", "We do not track whether you open this email",
                  "Questions about Passport Renewal?"):  # fmt: skip
        assert words in " ".join(text.split()), words
    assert not re.search(r"-[a-z_0-9]+_link(_\d)?-", html)  # every tag was filled


@ONE_DATABASE
def test_the_plain_text_part_has_the_same_content(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    item = outgoing(stack, 8)
    stack.channel.send([item])
    (seen,) = mail_stand_in.mail_sends()
    text = personalize(content(seen, "text/plain"), seen.personalizations[0]["substitutions"])
    assert f"4 – Agree: {item.survey_url}?q=satisfaction&a=4" in text
    assert f"Take the survey: {item.survey_url}" in text
    assert f"Unsubscribe from survey emails: {item.unsubscribe_url}" in text
    for words in ("Department of State", "Paperwork Reduction Act statement", "1090-0011", "June 30, 2028",
                  "Participation is voluntary.", "We do not track", "https://example.gov/contact"):  # fmt: skip
        assert words in text, words
    assert "<" not in text.replace(f"<{item.unsubscribe_url}>", "")


@ONE_DATABASE
def test_a_thumbs_flow_embeds_its_two_ratings(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    item = outgoing(stack, 9, service="email-drivers")
    stack.channel.send([item])
    page = parse(delivered_html(mail_stand_in.mail_sends()[0]))
    assert [(t, h) for t, h in page.links if "?q=" in h] == [
        ("Thumbs down", f"{item.survey_url}?q=trust&a=1"), ("Thumbs up", f"{item.survey_url}?q=trust&a=5")]  # fmt: skip


@ONE_DATABASE
def test_the_spanish_message(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    item = outgoing(stack, 10, language="es")
    stack.channel.send([item])
    (seen,) = mail_stand_in.mail_sends()
    html = delivered_html(seen)
    page = parse(html)
    assert page.html_lang == "es"
    assert [t for t, h in page.links if "?q=" in h] == [
        "1 – Muy en desacuerdo", "2 – En desacuerdo", "3 – Ni de acuerdo ni en desacuerdo", "4 – De acuerdo",
        "5 – Muy de acuerdo"]  # fmt: skip
    flat = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    for words in ("Departamento de Estado quisiera saber cómo le fue con Renovación de pasaporte",
                  "Estoy satisfecho(a) con el servicio que recibí de Renovación de pasaporte",
                  "Número de control de la OMB: 1090-0011. Vence el 30 de junio de 2028.",
                  "Ley de Reducción de Trámites Administrativos", "Sus respuestas se usan para mejorar este servicio",
                  "¿Tiene preguntas sobre Renovación de pasaporte?"):  # fmt: skip
        assert words in flat, words
    assert seen.json()["from"]["name"] == "Departamento de Estado de EE. UU."  # the sender's name, translated
    assert "Satisfied" not in flat and "Strongly" not in flat


@ONE_DATABASE
def test_the_email_channels_own_strings_are_in_spanish(email_stack):
    stack = email_stack(None)
    config = stack.rt.catalog.services["email-first"]
    rendered = render(config, stack.rt.catalog.flow_of(config), "es", unsubscribe=True)
    for english in ("How was your experience", "Take the survey", "Unsubscribe from survey emails",
                    "We do not track", "You received this email", "Nothing is recorded"):  # fmt: skip
        assert english not in rendered.html, english


@ONE_DATABASE
def test_no_survey_link_fails_the_item_alone(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    good, linkless = outgoing(stack, 11), replace(outgoing(stack, 12), survey_url=None)
    results = {r.invitation_id: r for r in stack.channel.send([good, linkless])}
    assert results[good.invitation_id].outcome is Outcome.SENT
    assert results[linkless.invitation_id].outcome is Outcome.FAILED
    assert len(mail_stand_in.mail_sends()[0].personalizations) == 1


@ONE_DATABASE
def test_without_an_unsubscribe_link_no_list_unsubscribe_header_points_nowhere(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    item = outgoing(stack, 13, unsubscribe=False)
    stack.channel.send([item])
    (seen,) = mail_stand_in.mail_sends()
    p = seen.personalizations[0]
    assert "headers" not in p and "-unsubscribe_link-" not in p["substitutions"]
    assert "-unsubscribe_link-" not in content(seen, "text/html")


def test_a_dispatched_email_carries_its_one_click_unsubscribe_link(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    invitation_id = stack.schedule("LU-1", "lu1@example.com")
    stack.dispatch()
    (seen,) = mail_stand_in.mail_sends()
    p = seen.personalizations[0]
    url = p["headers"]["List-Unsubscribe"].strip("<>")
    assert url.startswith(f"{PUBLIC_URL}/u/") and p["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert p["substitutions"]["-unsubscribe_link-"] == url
    with stack.rt.sessions() as session:
        found = tokens.invitation_for(session, url.rsplit("/", 1)[1], purpose=tokens.UNSUBSCRIBE)
        assert found is not None and found.id == invitation_id
    assert stack.client.post(url.removeprefix(PUBLIC_URL), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert [s.reason.value for s in stack.suppressions()] == ["opted_out"]


def test_the_dispatched_survey_link_opens_this_invitations_survey(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    invitation_id = stack.schedule("SL-1", "sl1@example.com")
    stack.dispatch()
    (seen,) = mail_stand_in.mail_sends()
    link = seen.personalizations[0]["substitutions"]["-rating_link_4-"]
    page = stack.client.get(link.removeprefix(PUBLIC_URL))
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert re.search(r'id="q-satisfaction-4"[^>]*checked', page.get_data(as_text=True))
    with stack.rt.sessions() as session:
        assert (
            session.execute(select(Invitation.state).where(Invitation.id == invitation_id)).scalar_one().value == "sent"
        )


@ONE_DATABASE
def test_a_channel_instance_is_usable_without_a_mailer(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    lonely = EmailChannel(replace(stack.rt.settings, providers={}))
    (result,) = lonely.send([outgoing(stack, 14)])
    assert result.outcome is Outcome.FAILED and result.detail == NOT_CONFIGURED
    assert mail_stand_in.requests == [] and isinstance(mail_stand_in, MailStandIn)


@ONE_DATABASE
def test_a_reminder_goes_in_its_own_request_with_its_own_subject(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    first, reminder = outgoing(stack, 15), outgoing(stack, 16)
    reminder = replace(reminder, reminder=True)
    results = stack.channel.send([first, reminder])
    assert {r.outcome for r in results} == {Outcome.SENT}
    subjects = sorted(s.json()["subject"] for s in mail_stand_in.mail_sends())
    assert subjects == ["How was your experience with Passport Renewal?",
                        "Reminder: how was your experience with Passport Renewal?"]  # fmt: skip
    reminded = next(s for s in mail_stand_in.mail_sends() if s.json()["subject"].startswith("Reminder"))
    assert "the survey is still open" in content(reminded, "text/plain")
