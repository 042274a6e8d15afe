"""Phone identity: the one place where a phone number written by a human, a carrier or a
spreadsheet becomes an E.164 identity (and where an E.164 number becomes something to dial
or to show).

Every path uses it: caller lookup on incoming calls, spreadsheet import, dial-out.

Rules (see also the tests in ``tests/unit/test_phones.py``):

Input shapes
    Separators (spaces of any Unicode kind, dashes of any kind, dots, parentheses) are
    ignored; non-ASCII digits (full-width, Arabic-Indic, ...) count as digits. A leading
    ``+`` means an international number. ``00`` and the default region's own international
    prefix (``810`` for RU, ``011`` for US, ...) are accepted instead of ``+``. ``tel:`` and
    ``sip:`` URIs are unwrapped (``;ext=`` and ``;phone-context=`` are honoured). A 7-digit
    local number (more precisely: one whose length plus the configured area code makes a
    national number) gets the configured area code. Caller IDs such as ``anonymous``,
    ``unknown`` or ``<unknown>`` are rejected as :attr:`PhoneRejectReason.HIDDEN`.

Extensions
    ``доб. 123``, ``добавочный``, ``вн.``, ``ext 5``, ``extension``, ``x5``, ``#123``,
    ``,123``, ``;123``, ``~123`` and ``;ext=123`` (tel URI) after the number are kept in
    :attr:`PhoneNumber.extension` (1 to 6 digits). Seven or more digits after ``,``/``;``
    are a second number: the input is rejected as :attr:`PhoneRejectReason.MULTIPLE_NUMBERS`,
    as is anything with ``/`` between digits (``123-45-67/68`` means two numbers).

Letters
    A leading label (``тел.``, ``моб.:``, ``tel.``, ``phone:``, ``mobile``, ...) is dropped.
    Any other letter that is not part of an extension marker or a URI scheme rejects the input
    (:attr:`PhoneRejectReason.INVALID_CHARACTERS`): a letter suffix (``84951234567a``), a
    note (``8916... мама``) and vanity numbers (``1-800-FLOWERS``) are not guessed at.

Spreadsheet floats
    ``79161234567.0`` (any number of zeros after the dot) is the plain number. Scientific
    notation (``7.9161234567E+10``, also with a decimal comma) is accepted only when every
    digit of the integer is written out in the mantissa; if the exponent is larger than the
    written digits (``7.91612E+10``), digits were lost and the input is rejected as
    :attr:`PhoneRejectReason.SCIENTIFIC_NOTATION` (re-export the column as text).

Validity
    A number is accepted when libphonenumber's metadata says it is valid
    (``is_valid_number``). One exception: a +7 number whose 10-digit national number starts
    with 9 is a Russian mobile number and is always accepted, because mobile (DEF) ranges
    are allocated and ported faster than the metadata is updated (e.g. parts of 930-939 are
    "invalid" in current metadata). Everything else that is merely *possible* (right length,
    unallocated range: +7 0xx/1xx/2xx/5xx, an unknown UK range, ...) is rejected as
    :attr:`PhoneRejectReason.INVALID_NUMBER`.

Dialling
    :meth:`PhoneIdentity.dial_string`: numbers of the default region's country code are
    dialled in national form with the trunk prefix from the metadata (RU: ``8`` + 10 digits,
    GB: ``0`` + NSN, no prefix where the country has none); all other numbers as ``+`` and
    the E.164 digits (the Asterisk dialplan rewrites ``+`` to the trunk's own international
    prefix if it needs one).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import phonenumbers
from phonenumbers import (
    CountryCodeSource,
    NumberParseException,
    PhoneMetadata,
    PhoneNumberFormat,
    ValidationResult,
)

__all__ = [
    "PhoneIdentity",
    "PhoneNumber",
    "PhoneRejectReason",
    "PhoneRejected",
    "phone_identity",
]


class PhoneRejectReason(StrEnum):
    """Why an input is not a phone number we can identify a person by."""

    EMPTY = "empty"
    """Nothing but whitespace."""
    HIDDEN = "hidden"
    """The caller withheld the number: ``anonymous``, ``unknown``, ``<unknown>``, ..."""
    NO_DIGITS = "no_digits"
    """Text without a single digit (or only an extension, with no number before it)."""
    INVALID_CHARACTERS = "invalid_characters"
    """Letters or symbols that have no place in a phone number."""
    MULTIPLE_NUMBERS = "multiple_numbers"
    """More than one number in one field (``84951234567, 89161234567``)."""
    BAD_EXTENSION = "bad_extension"
    """An extension longer than 6 digits."""
    SCIENTIFIC_NOTATION = "scientific_notation"
    """A spreadsheet float in scientific notation that lost digits."""
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID_COUNTRY_CODE = "invalid_country_code"
    UNKNOWN_AREA = "unknown_area"
    """A local number, but no area code is configured to complete it."""
    INVALID_NUMBER = "invalid_number"
    """Right shape, but not in any allocated number range."""


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A normalised number: the identity is ``e164``; the extension is kept beside it."""

    e164: str
    extension: str | None
    region: str | None
    """ISO 3166 region of the number (``"RU"``, ``"GB"``), None if the metadata has none."""


@dataclass(frozen=True, slots=True)
class PhoneRejected:
    """An input that is not a usable number, and why."""

    raw: str
    reason: PhoneRejectReason
    detail: str
    """A short English explanation for logs, import reports and the UI."""


PhoneResult = PhoneNumber | PhoneRejected

_MAX_RAW_CHARS: Final = 128
_MAX_E164_DIGITS: Final = 15
_MAX_INPUT_DIGITS: Final = 18  # an international prefix (up to 3 digits) + 15 digits
_MIN_DIGITS: Final = 3
_MAX_EXTENSION_DIGITS: Final = 6

_HIDDEN_CALLER_IDS: Final = frozenset(
    {
        "anonymous",
        "anonymous@anonymous.invalid",
        "unknown",
        "unavailable",
        "private",
        "restricted",
        "withheld",
        "hidden",
        "blocked",
        "no caller id",
        "anonym",
        "аноним",
        "анонимный",
        "скрыт",
        "скрытый",
        "скрытый номер",
        "номер скрыт",
        "неизвестен",
        "неизвестно",
        "неизвестный",
        "неизвестный номер",
    }
)

# Separators people and programs put between digits (after Unicode folding).
_SEPARATORS: Final = " \t\r\n\v\f-.()"
_DELETE_SEPARATORS: Final = str.maketrans("", "", _SEPARATORS + "+")
_SIMPLE_RE: Final = re.compile(r"\(?\s*\+?[0-9 \t\r\n\v\f\-.()]+")
_FLOAT_RE: Final = re.compile(r"([0-9]+)\.0+")
_SCIENTIFIC_RE: Final = re.compile(r"\+?([0-9])(?:[.,]([0-9]+))?[eE]\+?([0-9]{1,3})")
_EXTENSION_RE: Final = re.compile(
    r"""
    (?P<main>.*?)\s*\(?\s*
    (?:
        (?:добавочный|доб|доп|внутренний|внутр|вн|extension|extn|ext|x)\s*[.:]?
      | (?P<symbol>[,;]+|[#~])
    )
    \s*[.:]?\s*(?P<ext>[0-9]+)\s*\)?\s*
    """,
    re.IGNORECASE | re.VERBOSE,
)
_LABEL_RE: Final = re.compile(
    r"(?:телефон|тел|мобильный|моб|сотовый|сот|phone|tel|mobile|mob|cell)\s*[.:]?\s*[.:]?\s*",
    re.IGNORECASE,
)
_SECOND_NUMBER_RE: Final = re.compile(r"[0-9][\s\-.()]*[/,;\\|]|[0-9][\s\-.()]*\+")
_URI_SCHEME_RE: Final = re.compile(r"(tel|sips?):", re.IGNORECASE)
_E164_RE: Final = re.compile(r"\+[1-9][0-9]{1,14}")


def _fold_unicode(text: str) -> str:
    """Map Unicode digits, spaces and dashes to ASCII; drop invisible format characters."""
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if category == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        elif category == "Pd" or ch in "\u2212\u2043":
            out.append("-")
        elif category in ("Zs", "Zl", "Zp") or ch.isspace():
            out.append(" ")
        elif category == "Cf":
            continue
        elif ch.isdigit():  # digit-like but not a decimal digit (e.g. Ethiopic numerals)
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def _reject(raw: str, reason: PhoneRejectReason, detail: str) -> PhoneRejected:
    return PhoneRejected(raw=raw, reason=reason, detail=detail)


def _is_ru_mobile(num: phonenumbers.PhoneNumber) -> bool:
    """+7 9nn nnn-nn-nn: a Russian mobile number, whatever the metadata's range list says."""
    national = num.national_number or 0
    return (
        num.country_code == 7
        and not num.italian_leading_zero
        and 9_000_000_000 <= national <= 9_999_999_999
    )


def _valid_region(num: phonenumbers.PhoneNumber) -> tuple[bool, str | None]:
    """(valid, region) by the rule in the module docstring, computing the region once."""
    region = phonenumbers.region_code_for_number(num)
    if region is not None and phonenumbers.is_valid_number_for_region(num, region):
        return True, region
    if _is_ru_mobile(num):
        return True, "RU"
    return False, region


class PhoneIdentity:
    """Normalises raw phone numbers for one default region and area code.

    Instances are immutable apart from their bounded LRU cache of raw string → result, and
    are safe to share between threads and tasks; use :func:`phone_identity` to get the
    shared one for a configuration.
    """

    def __init__(self, region: str = "RU", area_code: str = "495", cache_size: int = 65536) -> None:
        region = region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {region!r}")
        area_code = area_code.strip()
        if area_code and not (area_code.isascii() and area_code.isdigit()):
            raise ValueError(f"area code must be digits, got {area_code!r}")
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:  # pragma: no cover - SUPPORTED_REGIONS all have metadata
            raise ValueError(f"no metadata for region {region!r}")
        self.region: Final = region
        self.area_code: Final = area_code
        self._country_code: Final = phonenumbers.country_code_for_region(region)
        self._cc_prefix: Final = f"+{self._country_code}"
        self._trunk_prefix: Final = metadata.national_prefix or ""
        self._international_prefix: Final = metadata.international_prefix or ""
        # A local number plus the area code makes a national number of a possible length.
        lengths = metadata.general_desc.possible_length if metadata.general_desc else ()
        self._local_lengths: Final = frozenset(n - len(area_code) for n in lengths) - {0}
        # The fast path below hard-codes the Russian numbering plan (10-digit national
        # numbers, trunk prefix 8, international prefix 810).
        self._ru_fast: Final = region == "RU"
        self._ru_local_len: Final = 10 - len(area_code) if 0 < len(area_code) < 10 else -1
        self._normalize_cached: Final = functools.lru_cache(maxsize=cache_size)(
            self._normalize_uncached
        )

    def __repr__(self) -> str:
        return f"PhoneIdentity(region={self.region!r}, area_code={self.area_code!r})"

    # -- public API -------------------------------------------------------------------

    def normalize(self, raw: str) -> PhoneNumber | PhoneRejected:
        """The identity of ``raw``, or why it has none. Never raises on any string."""
        return self._normalize_cached(raw)

    def e164(self, raw: str) -> str | None:
        """``normalize(raw).e164``, or None when the input is rejected."""
        result = self._normalize_cached(raw)
        return result.e164 if isinstance(result, PhoneNumber) else None

    def dial_string(self, e164: str) -> str:
        """What to hand to Asterisk to dial ``e164``.

        Numbers with the default region's country code: trunk prefix + national significant
        number (RU: ``+74951234567`` → ``84951234567``). Others: ``+`` and the E.164 digits
        unchanged. Pure; raises ValueError if ``e164`` is not an E.164 string.
        """
        if not _E164_RE.fullmatch(e164):
            raise ValueError(f"not an E.164 number: {e164!r}")
        if e164.startswith(self._cc_prefix):  # country codes are prefix-free
            return self._trunk_prefix + e164[len(self._cc_prefix) :]
        return e164

    def display(self, e164: str) -> str:
        """International human format (``+7 916 123-45-67``); the input as-is if unparsable."""
        if not _E164_RE.fullmatch(e164):
            return e164
        try:
            num = phonenumbers.parse(e164, None)
        except NumberParseException:
            return e164
        return phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)

    def cache_info(self) -> functools._CacheInfo:
        """Hits, misses and size of this instance's cache."""
        return self._normalize_cached.cache_info()

    # -- normalisation ----------------------------------------------------------------

    def _normalize_uncached(self, raw: str) -> PhoneResult:
        if len(raw) > _MAX_RAW_CHARS:
            return _reject(raw, PhoneRejectReason.TOO_LONG, f"over {_MAX_RAW_CHARS} characters")
        text = raw.strip()
        if not text.isascii():
            text = _fold_unicode(text).strip()
        if not text:
            return _reject(raw, PhoneRejectReason.EMPTY, "no number given")
        # The common shapes first: bare digits, +digits, digits with separators.
        if text.isdigit():
            return self._resolve(raw, text, False, None)
        if text[0] == "+" and text[1:].isdigit():
            return self._resolve(raw, text[1:], True, None)
        if "." in text and (float_match := _FLOAT_RE.fullmatch(text)):
            return self._resolve(raw, float_match[1], False, None)
        if _SIMPLE_RE.fullmatch(text):
            has_plus = "+" in text
            return self._resolve(raw, text.translate(_DELETE_SEPARATORS), has_plus, None)
        return self._normalize_general(raw, text)

    def _normalize_general(self, raw: str, text: str) -> PhoneResult:
        """Everything that is not a plain run of digits and separators."""
        lowered = text.lower()
        if lowered.strip("<>\"'[]() ") in _HIDDEN_CALLER_IDS:
            return _reject(raw, PhoneRejectReason.HIDDEN, "caller ID withheld")
        extension: str | None = None
        scheme = _URI_SCHEME_RE.match(text)
        if scheme is not None:
            unwrapped = self._unwrap_uri(raw, text, scheme[1].lower())
            if isinstance(unwrapped, PhoneRejected):
                return unwrapped
            text, extension = unwrapped
        text = text.strip().strip("'\"`«»„“”‘’").strip()
        if label := _LABEL_RE.match(text):
            text = text[label.end() :]
        if not text:
            return _reject(raw, PhoneRejectReason.NO_DIGITS, "no digits")
        if extension is None and (ext_match := _EXTENSION_RE.fullmatch(text)):
            extension = ext_match["ext"]
            text = ext_match["main"].strip()
            if len(extension) > _MAX_EXTENSION_DIGITS:
                if (ext_match["symbol"] or "#")[0] in ",;":
                    return _reject(raw, PhoneRejectReason.MULTIPLE_NUMBERS, "more than one number")
                return _reject(
                    raw,
                    PhoneRejectReason.BAD_EXTENSION,
                    f"extension longer than {_MAX_EXTENSION_DIGITS} digits",
                )
        return self._normalize_main(raw, text, extension)

    def _unwrap_uri(
        self, raw: str, text: str, scheme: str
    ) -> tuple[str, str | None] | PhoneRejected:
        """``tel:+7...;ext=1`` or ``sip:+7...@host;user=phone`` → (number, extension)."""
        body = text[len(scheme) + 1 :].strip()
        extension: str | None = None
        if scheme == "tel":
            number, *params = body.split(";")
            for param in params:
                key, _, value = param.partition("=")
                key = key.strip().lower()
                value = value.strip()
                if key == "ext":
                    if not (value.isdigit() and len(value) <= _MAX_EXTENSION_DIGITS):
                        return _reject(raw, PhoneRejectReason.BAD_EXTENSION, "bad ;ext= value")
                    extension = value
                elif key == "phone-context" and value.startswith("+") and "+" not in number:
                    number = value + number
        else:
            number = body.split("@", 1)[0].split(";", 1)[0]
            if number.strip().lower() in _HIDDEN_CALLER_IDS:
                return _reject(raw, PhoneRejectReason.HIDDEN, "caller ID withheld")
        return number, extension

    def _normalize_main(self, raw: str, text: str, extension: str | None) -> PhoneResult:
        """The number part, once the extension and any URI wrapping are gone."""
        if text.isdigit():
            return self._resolve(raw, text, False, extension)
        if float_match := _FLOAT_RE.fullmatch(text):
            return self._resolve(raw, float_match[1], False, extension)
        if _SIMPLE_RE.fullmatch(text):
            return self._resolve(raw, text.translate(_DELETE_SEPARATORS), "+" in text, extension)
        if sci := _SCIENTIFIC_RE.fullmatch(text):
            return self._scientific(raw, sci, extension)
        if not any(ch.isdigit() for ch in text):
            detail = "only an extension, no number" if extension is not None else "no digits"
            return _reject(raw, PhoneRejectReason.NO_DIGITS, detail)
        if (
            _SECOND_NUMBER_RE.search(text)
            and sum(ch.isdigit() for ch in text) > _MAX_E164_DIGITS // 2
        ):
            return _reject(raw, PhoneRejectReason.MULTIPLE_NUMBERS, "more than one number")
        if any(ch.isalpha() for ch in text):
            return _reject(raw, PhoneRejectReason.INVALID_CHARACTERS, "contains letters")
        bad = next((ch for ch in text if not (ch.isdigit() or ch in _SEPARATORS)), "?")
        return _reject(raw, PhoneRejectReason.INVALID_CHARACTERS, f"unexpected character {bad!r}")

    def _scientific(self, raw: str, sci: re.Match[str], extension: str | None) -> PhoneResult:
        """``7.9161234567E+10``: accepted only if no digit was lost."""
        fraction = sci[2] or ""
        exponent = int(sci[3])
        if len(fraction) < exponent:
            return _reject(
                raw,
                PhoneRejectReason.SCIENTIFIC_NOTATION,
                "scientific notation lost digits; export the column as text",
            )
        if len(fraction) > exponent:
            return _reject(
                raw,
                PhoneRejectReason.SCIENTIFIC_NOTATION,
                "scientific notation, not a whole number",
            )
        return self._resolve(raw, sci[1] + fraction, False, extension)

    def _resolve(self, raw: str, digits: str, has_plus: bool, extension: str | None) -> PhoneResult:
        """Digits (and whether they followed a ``+``) → number, by the module's rules."""
        count = len(digits)
        if count == 0:
            return _reject(raw, PhoneRejectReason.NO_DIGITS, "no digits")
        if count > (_MAX_E164_DIGITS if has_plus else _MAX_INPUT_DIGITS):
            return _reject(
                raw, PhoneRejectReason.TOO_LONG, f"{count} digits, more than E.164 allows"
            )
        if count < _MIN_DIGITS:
            return _reject(raw, PhoneRejectReason.TOO_SHORT, f"only {count} digits")
        if self._ru_fast:
            fast = self._resolve_ru_fast(digits, has_plus, extension)
            if fast is not None:
                return fast
        return self._resolve_slow(raw, digits, has_plus, extension)

    def _resolve_ru_fast(
        self, digits: str, has_plus: bool, extension: str | None
    ) -> PhoneNumber | None:
        """The shapes carriers and spreadsheets use in Russia, without a full parse.

        Only accepts; anything it is unsure about (or that would be rejected) goes to the
        general path, so both paths always agree (a test checks this).
        """
        count = len(digits)
        if count == 11:
            first = digits[0]
            if first == "7" or (first == "8" and not has_plus and digits[1] != "1"):
                national = digits[1:]
            else:
                return None
        elif has_plus:
            return None
        elif count == 10:
            national = digits
        elif count == self._ru_local_len:
            national = self.area_code + digits
        else:
            return None
        zone = national[0]
        if zone == "9":
            return PhoneNumber(e164="+7" + national, extension=extension, region="RU")
        if zone in "348" and not national.startswith("810"):
            num = phonenumbers.PhoneNumber(country_code=7, national_number=int(national))
            valid, region = _valid_region(num)
            if valid:
                return PhoneNumber(e164="+7" + national, extension=extension, region=region)
        return None

    def _parse(self, text: str) -> phonenumbers.PhoneNumber | NumberParseException:
        try:
            # keep_raw_input: only then does the parser record country_code_source.
            return phonenumbers.parse(text, self.region, keep_raw_input=text[0] != "+")
        except NumberParseException as exc:
            return exc

    def _resolve_slow(
        self, raw: str, digits: str, has_plus: bool, extension: str | None
    ) -> PhoneResult:
        """The general path: libphonenumber's parser plus our validity and local-number rules."""
        # "00" is the international prefix in most of the world, even where the region's own
        # is another (RU: 810): "00 44 20 7946 0958". No national number starts with it.
        international: phonenumbers.PhoneNumber | NumberParseException | None = None
        if not has_plus and digits.startswith("00") and self._international_prefix != "00":
            international = self._parse("+" + digits[2:])
            if isinstance(international, phonenumbers.PhoneNumber):
                valid, region = _valid_region(international)
                if valid:
                    return self._accept(international, region, extension)
        primary = self._parse("+" + digits if has_plus else digits)
        if isinstance(primary, phonenumbers.PhoneNumber):
            valid, region = _valid_region(primary)
            if valid:
                return self._accept(primary, region, extension)
        if has_plus:
            return self._explain(raw, primary)
        national_reading = (
            isinstance(primary, NumberParseException)
            or primary.country_code_source == CountryCodeSource.FROM_DEFAULT_COUNTRY
        )
        # A local number: complete it with the configured area code.
        # (Also when the digits began like an international prefix: "810-43-20" in Moscow.)
        local_only = (
            national_reading
            and isinstance(primary, phonenumbers.PhoneNumber)
            and phonenumbers.is_possible_number_with_reason(primary)
            == ValidationResult.IS_POSSIBLE_LOCAL_ONLY
        )
        if local_only and not self.area_code:
            return _reject(
                raw, PhoneRejectReason.UNKNOWN_AREA, "local number, but no area code is configured"
            )
        if self.area_code and len(digits) in self._local_lengths:
            completed = self._parse(self.area_code + digits)
            if (
                isinstance(completed, phonenumbers.PhoneNumber)
                and completed.country_code_source == CountryCodeSource.FROM_DEFAULT_COUNTRY
            ):
                valid, region = _valid_region(completed)
                if valid:
                    return self._accept(completed, region, extension)
        if local_only:
            return _reject(
                raw,
                PhoneRejectReason.INVALID_NUMBER,
                f"local number, not valid with area code {self.area_code}",
            )
        if international is not None and len(digits) > 10:
            return self._explain(raw, international)
        return self._explain(raw, primary)

    @staticmethod
    def _accept(
        num: phonenumbers.PhoneNumber, region: str | None, extension: str | None
    ) -> PhoneNumber:
        e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
        return PhoneNumber(e164=e164, extension=extension, region=region)

    def _explain(
        self, raw: str, outcome: phonenumbers.PhoneNumber | NumberParseException
    ) -> PhoneRejected:
        """The reject reason for a parse failure or an invalid parsed number."""
        if isinstance(outcome, NumberParseException):
            error = outcome.error_type
            if error == NumberParseException.INVALID_COUNTRY_CODE:
                return _reject(raw, PhoneRejectReason.INVALID_COUNTRY_CODE, "unknown country code")
            if error in (
                NumberParseException.TOO_SHORT_NSN,
                NumberParseException.TOO_SHORT_AFTER_IDD,
            ):
                return _reject(raw, PhoneRejectReason.TOO_SHORT, "too few digits")
            if error == NumberParseException.TOO_LONG:
                return _reject(raw, PhoneRejectReason.TOO_LONG, "too many digits")
            return _reject(raw, PhoneRejectReason.INVALID_NUMBER, "not a phone number")
        where = phonenumbers.region_code_for_country_code(outcome.country_code or 0)
        country = where if where not in ("ZZ", "001") else f"+{outcome.country_code}"
        possible = phonenumbers.is_possible_number_with_reason(outcome)
        if possible == ValidationResult.INVALID_COUNTRY_CODE:
            return _reject(raw, PhoneRejectReason.INVALID_COUNTRY_CODE, "unknown country code")
        if possible in (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
            return _reject(raw, PhoneRejectReason.TOO_SHORT, f"too few digits for {country}")
        if possible == ValidationResult.TOO_LONG:
            return _reject(raw, PhoneRejectReason.TOO_LONG, f"too many digits for {country}")
        if possible == ValidationResult.INVALID_LENGTH:
            return _reject(
                raw, PhoneRejectReason.INVALID_NUMBER, f"wrong number of digits for {country}"
            )
        return _reject(
            raw, PhoneRejectReason.INVALID_NUMBER, f"not in any allocated range of {country}"
        )


@functools.cache
def _shared_identity(region: str, area_code: str) -> PhoneIdentity:
    return PhoneIdentity(region=region, area_code=area_code)


def phone_identity(region: str, area_code: str) -> PhoneIdentity:
    """The process-wide :class:`PhoneIdentity` for a configuration (one cache per config)."""
    return _shared_identity(region.strip().upper(), area_code.strip())
