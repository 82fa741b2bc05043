"""Form bodies and query strings read as UTF-8 or refused, never as text the sender did not send (SPEC §2 rule 11).

Werkzeug reads a form leniently: in a urlencoded body a percent-escape that is not UTF-8 (``comment=%FF%FE``) is
kept as the literal text ``%FF%FE``, raw bytes that are not UTF-8 leave the whole form silently empty, and a
multipart field is decoded with U+FFFD replacing each bad byte. A view then stored text no one typed.
:class:`Utf8Request` (the app's request class, set by :mod:`engine.webapp.request_checks`) reads every form body
strictly: the first read of ``request.form`` (or ``request.values``) raises :class:`NotUtf8`, naming the fields,
and every later read raises it again, so no code path sees the form half-read. The before-request check reads the
form of nearly every form route; the survey pages read theirs first thing. A 400 follows: a problem for machines,
the "cannot be read" page for people, nothing read further and nothing stored.

The query string the same: Werkzeug kept an escape that is not UTF-8 as its literal text and raised
``UnicodeDecodeError`` (a 500 on every route) on a raw byte that is not UTF-8. ``request.args`` here leaves such
parameters out and names them in ``query_not_utf8``, which the before-request check refuses (400) before any view
runs; what an error page reads of the query (``lang``) is then only what was UTF-8. And the URL path: Werkzeug
decoded its bytes with U+FFFD replacements, so ``/transactions/<service>/CC-%FF`` found the transaction named
``CC-\ufffd``; :attr:`Utf8Request.path_not_utf8` tells, and the same check refuses it (400).
"""

from __future__ import annotations

import codecs
import re
from typing import IO, Any
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import Headers, MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.utils import cached_property

from engine.common.limits import cut

# Bytes that are not UTF-8, decoded with the ``surrogateescape`` handler: each stands as U+DC80-U+DCFF, which no
# valid UTF-8 decodes to, so finding one tells an invalid sequence apart from any text a person could send.
_ESCAPED = re.compile("[\udc80-\udcff]")
# Werkzeug decodes a multipart field with ``errors="replace"`` under the charset the parser names: this codec is
# UTF-8 that ignores that and escapes instead, so the bad bytes can be found (and refused) after parsing.
_ESCAPING_UTF_8 = "survey_engine_utf_8_escaped"


def _decode_escaped(data: Any, errors: str = "strict", /) -> tuple[str, int]:  # data: any bytes-like object
    return codecs.utf_8_decode(data, "surrogateescape", True)


def _find_codec(name: str) -> codecs.CodecInfo | None:
    if name != _ESCAPING_UTF_8:
        return None
    return codecs.CodecInfo(name=_ESCAPING_UTF_8, encode=codecs.utf_8_encode, decode=_decode_escaped)


codecs.register(_find_codec)


class NotUtf8(BadRequest):
    """A form body (``source`` "form"), a query string ("query") or a URL path ("URL path") that is not UTF-8:
    ``fields`` names each field holding such bytes (escaped and cut)."""

    description = "The request is not UTF-8 text."

    def __init__(self, fields: list[str], source: str = "form") -> None:
        super().__init__()
        self.fields = fields
        self.source = source


def _named(name: str) -> str:
    """A field name as a message may echo it: bytes that are not UTF-8 as ``\\xff``, a long name cut."""
    return cut(name.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace"))


def _escaped(item: tuple[str, str]) -> bool:
    return bool(_ESCAPED.search(item[0]) or _ESCAPED.search(item[1]))


def _names(items: list[tuple[str, str]]) -> list[str]:
    return list(dict.fromkeys(_named(name) for name, _ in items))


def refuse_escaped(items: list[tuple[str, str]]) -> None:
    """Raise :class:`NotUtf8` when a name or value of ``items`` held bytes that are not UTF-8."""
    bad = [item for item in items if _escaped(item)]
    if bad:
        raise NotUtf8(_names(bad))


def _escaped_pairs(encoded: bytes) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of a urlencoded text, bytes that are not UTF-8 (raw or escaped) kept as escapes."""
    return parse_qsl(encoded.decode("utf-8", "surrogateescape"), keep_blank_values=True, errors="surrogateescape")


class _Utf8MultiPartParser(MultiPartParser):
    """Werkzeug's multipart parser, its UTF-8 fields decoded with escapes instead of replacements."""

    def get_part_charset(self, headers: Headers) -> str:
        charset = super().get_part_charset(headers)
        return charset if charset == "iso-8859-1" else _ESCAPING_UTF_8  # Latin-1 reads any byte as it is

    def parse(self, stream: IO[bytes], boundary: bytes, content_length: int | None) -> Any:
        form, files = super().parse(stream, boundary, content_length)
        refuse_escaped(list(form.items(multi=True)))
        return form, files


class Utf8FormDataParser(FormDataParser):
    """Werkzeug's form parser, refusing (:class:`NotUtf8`) a body that is not UTF-8 instead of altering it."""

    def _parse_urlencoded(self, stream: IO[bytes], mimetype: str, content_length: int | None,
                          options: dict[str, str]) -> Any:  # fmt: skip
        items = _escaped_pairs(stream.read())
        refuse_escaped(items)
        return stream, self.cls(items), self.cls()

    def _parse_multipart(self, stream: IO[bytes], mimetype: str, content_length: int | None,
                         options: dict[str, str]) -> Any:  # fmt: skip
        parser = _Utf8MultiPartParser(stream_factory=self.stream_factory, max_form_memory_size=self.max_form_memory_size,
                                      max_form_parts=self.max_form_parts, cls=self.cls)  # fmt: skip
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        try:
            form, files = parser.parse(stream, boundary, content_length)
        except UnicodeDecodeError:  # a part's headers (its name) are not UTF-8
            raise NotUtf8([]) from None
        return stream, form, files


class Utf8Request(Request):
    """Flask's request, its form read by :class:`Utf8FormDataParser`; a refusal stands for every later read."""

    form_data_parser_class = Utf8FormDataParser
    _not_utf8: NotUtf8 | None = None

    @cached_property
    def path_not_utf8(self) -> bool:
        """Whether the URL path's bytes (as the server decoded its percent-escapes) are not UTF-8."""
        try:
            self.environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
        except UnicodeError:
            return True
        return False

    @cached_property
    def _query_pairs(self) -> list[tuple[str, str]]:
        return _escaped_pairs(self.query_string)

    @cached_property
    def query_not_utf8(self) -> list[str]:
        """The names of the query's parameters that are not UTF-8 (escaped and cut)."""
        return _names([item for item in self._query_pairs if _escaped(item)])

    @cached_property
    def args(self) -> MultiDict[str, str]:
        """The query's parameters that are UTF-8; the others are named in :attr:`query_not_utf8`."""
        return self.parameter_storage_class([item for item in self._query_pairs if not _escaped(item)])

    def _load_form_data(self) -> None:
        if self._not_utf8 is not None:  # the body was read once already: never parse what is left of it
            raise self._not_utf8
        try:
            super()._load_form_data()
        except NotUtf8 as refusal:
            self._not_utf8 = refusal
            raise
