"""TwiML for the IVR, built with the official SDK (:class:`twilio.twiml.voice_response.VoiceResponse`).

Every prompt that waits for the caller is a ``<Gather>`` posting to an ``action`` under ``/channels/ivr/`` with
``actionOnEmptyResult`` (a caller who presses nothing is reported, so "no input" is a turn like any other), followed
by a ``<Redirect>`` to the same action as a safety net. Each ``<Say>`` carries the call language's voice and
language from ``ivr.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence

from twilio.twiml.voice_response import Gather, VoiceResponse

from channels.ivr.data import ivr_data

MAX_HINTS = 100


def _say(node: VoiceResponse | Gather, text: str, language: str) -> None:
    voice = ivr_data().voice(language)
    node.say(text, voice=voice.voice, language=voice.language)


def render(response: VoiceResponse) -> str:
    return str(response.to_xml())


def empty() -> str:
    """An empty answer (status callbacks): nothing to do."""
    return render(VoiceResponse())


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return render(response)


def farewell(lines: Sequence[str], language: str) -> str:
    """Say ``lines`` and hang up."""
    response = VoiceResponse()
    for line in lines:
        _say(response, line, language)
    response.hangup()
    return render(response)


def menu(options: Sequence[tuple[str, str]], action: str, timeout: int) -> str:
    """A keypad menu whose options are each read in their own language: ``(language, text)``."""
    response = VoiceResponse()
    gather = Gather(input="dtmf", num_digits=1, action=action, method="POST", timeout=timeout,
                    action_on_empty_result=True)  # fmt: skip
    for language, text in options:
        _say(gather, text, language)
    response.append(gather)
    response.redirect(action, method="POST")
    return render(response)


def prompt(
    lines: Sequence[str],
    language: str,
    action: str,
    *,
    timeout: int,
    speech: bool = False,
    hints: Sequence[str] = (),
    num_digits: int | None = 1,
    finish_on_key: str = "",
) -> str:
    """Say ``lines`` inside a ``<Gather>`` that takes keys (and speech, in the call's language, when asked)."""
    voice = ivr_data().voice(language)
    attributes: dict[str, object] = {
        "input": "dtmf speech" if speech else "dtmf",
        "action": action,
        "method": "POST",
        "timeout": timeout,
        "finish_on_key": finish_on_key,
        "action_on_empty_result": True,
    }
    if num_digits is not None:
        attributes["num_digits"] = num_digits
    if speech:
        attributes.update(language=voice.language, speech_timeout="auto")
        if hints:
            attributes["hints"] = ", ".join(list(dict.fromkeys(h.replace(",", " ") for h in hints))[:MAX_HINTS])
    response = VoiceResponse()
    gather = Gather(**attributes)
    for line in lines:
        _say(gather, line, language)
    response.append(gather)
    response.redirect(action, method="POST")
    return render(response)
