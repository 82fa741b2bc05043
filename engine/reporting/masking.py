"""Contact data masked out of free text: email addresses and phone numbers become ``[email]`` and ``[phone]``.

Used by every output that shows a comment (the §6.2 file's ``question_4``, the dashboard's comments), so a
customer who typed their number or address into the free-text box never has it shown or exported.
"""

from __future__ import annotations

import re

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"

# local@domain.tld, and the common "name (at) domain.tld" dodge. Letters and digits of any script (``\w``): intake
# itself takes internationalized addresses (pat@exämple.com, pat@例え.jp), and a full-width "＠" or "．", or the
# ideographic full stop that separates labels in Japanese and Chinese text, writes the same address.
# The local part is at most 64 characters (RFC 5321 4.5.3.1), so each place in the text is tried in bounded time
# (a longer run before an "@" keeps its start, which no address holds). Unbounded (``+``), every place was tried to the
# end of the text: a comment of 2,000 letters took 150 ms to mask, 10,000 took 3.5 s, on every page and file showing it.
_AT = r"(?:[@＠﹫]|\s*[(\[（［]\s*at\s*[)\]）］]\s*)"
_DOT = r"[.．。｡]"
_EMAIL = re.compile(rf"[\w.!#$%&'*+/=?^`{{|}}~-]{{1,64}}{_AT}[\w-]+(?:{_DOT}[\w-]+)+", re.IGNORECASE)
# A run of at least 7 digits, possibly with a leading +, and separated by spaces, dots, dashes or parentheses
# (202) 555-0123, +1 202 555 0123, 202.555.0123, 2025550123; with the extension that may follow, run on or not
# (202-555-0123x45, 555-0188 ext. 12): masked with it.
_EXTENSION = r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?"
# An area code and a slash (202/555-0123, +1 202/555-0123), as people write a number too. Only that shape: a slash in
# any run of digits would take the dates of a comment (11/12/2026) for numbers.
_SLASHED = r"\+?(?:1[\s.-]?)?\(?\d{3}\)?\s?/\s?\d{3}[\s.-]?\d{4}"
_PHONE = re.compile(
    rf"(?<![\w])(?:\+?\(?\d(?:[\s().-]{{0,3}}\d){{6,14}}|{_SLASHED}){_EXTENSION}(?![\w])", re.IGNORECASE
)


def mask_contacts(text: str) -> str:
    """``text`` with email addresses and phone numbers replaced by ``[email]`` / ``[phone]``."""
    if not text:
        return text
    masked = _EMAIL.sub(EMAIL_MASK, text)
    return _PHONE.sub(PHONE_MASK, masked)
