"""SMS segment counting as Twilio bills it (GSM-7 / UCS-2), and optional GSM-7 normalisation.

Rules (Twilio's open-source message segment calculator is the reference):

* A body that uses only the GSM 03.38 basic set and its extension table is sent as GSM-7.
  Basic characters take one septet; extension characters (form feed ^ { } \\ [ ] ~ | €) take two
  (an escape plus the character). Up to 160 septets fit in one segment; a longer body is split
  into segments of at most 153 septets (7 octets go to the concatenation header), and an escape
  pair is never split across two segments.
* Any other character makes the whole body UCS-2, counted in UTF-16 code units (a character outside
  the Basic Multilingual Plane, such as most emoji, is a surrogate pair: 2 units). Up to 70 units fit
  in one segment; a longer body is split into segments of at most 67 units, and a surrogate pair is
  never split.
* An empty body is 1 segment (GSM-7, 0 units): that is what the calculator reports and what an
  MMS-less empty message would be billed as. (The Messages API itself refuses an empty body without
  media, error 21602.)
* Deliberate simplifications: characters are counted one code point at a time, not per grapheme
  cluster, so "\\r\\n" is two GSM-7 septets (the calculator's grapheme splitter would call it
  UCS-2, which is not how carriers encode it), and a multi-code-point emoji sequence may be split
  between its code points at a segment boundary (never inside a surrogate pair). Both only matter
  at segment boundaries of unusual bodies.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SegmentInfo",
    "is_gsm7",
    "normalize_for_gsm",
    "segment_info",
]

_LOGGER = logging.getLogger(__name__)

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet (the escape code 0x1B itself is not a character a body can carry).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[]~|€")

GSM7_SINGLE = 160
GSM7_CONCAT = 153
UCS2_SINGLE = 70
UCS2_CONCAT = 67


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a body is billed: encoding, segments, units (septets or UTF-16 units), characters."""

    encoding: Encoding
    segments: int
    units: int
    characters: int


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM-7 basic set or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _gsm7_units(text: str) -> list[int]:
    return [2 if ch in GSM7_EXTENSION else 1 for ch in text]


def _ucs2_units(text: str) -> list[int]:
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(units: list[int], single: int, concat: int) -> int:
    """Number of segments for per-character unit costs; a character is never split."""
    if sum(units) <= single:
        return 1
    segments, used = 1, 0
    for cost in units:
        if used + cost > concat:
            segments += 1
            used = 0
        used += cost
    return segments


def segment_info(body: str) -> SegmentInfo:
    """Encoding and segment count of an SMS body, as Twilio bills it.

    Args:
        body: the message text.

    Returns:
        A SegmentInfo; ``characters`` counts Unicode code points.
    """
    if is_gsm7(body):
        units = _gsm7_units(body)
        return SegmentInfo("GSM-7", _pack(units, GSM7_SINGLE, GSM7_CONCAT), sum(units), len(body))
    units = _ucs2_units(body)
    return SegmentInfo("UCS-2", _pack(units, UCS2_SINGLE, UCS2_CONCAT), sum(units), len(body))


# Look-alikes that push a body into UCS-2, with the GSM-7 text that reads the same.
_GSM_EQUIVALENTS: dict[str, str] = {
    # quotes and apostrophes
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u00b4": "'",
    "`": "'",
    "\u02bc": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2039": "<",
    "\u203a": ">",
    # dashes, bullets and ellipsis
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2022": "-",
    "\u00b7": "-",
    "\u2026": "...",
    # spaces and invisible characters
    "\u00a0": " ",
    "\u2000": " ",
    "\u2001": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2004": " ",
    "\u2005": " ",
    "\u2006": " ",
    "\u2007": " ",
    "\u2008": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",
    "\u205f": " ",
    "\u3000": " ",
    "\u2028": "\n",
    "\u2029": "\n",
    "\t": " ",
    "\u200b": "",
    "\u200c": "",
    "\u200d": "",
    "\u2060": "",
    "\ufeff": "",
    "\u00ad": "",
    # symbols
    "\u00f7": "/",
    "\u2044": "/",
    "\u00bc": "1/4",
    "\u00bd": "1/2",
    "\u00be": "3/4",
    "\u2122": "TM",
    "\u00ae": "(R)",
    "\u00a9": "(C)",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u00b0": " deg",
}

# Spanish and other accented letters outside GSM-7 (only with strip_accents=True: it changes words).
_ACCENT_EQUIVALENTS: dict[str, str] = {
    "á": "a",
    "í": "i",
    "ó": "o",
    "ú": "u",
    "Á": "A",
    "Í": "I",
    "Ó": "O",
    "Ú": "U",
    "ê": "e",
    "ë": "e",
    "â": "a",
    "ô": "o",
    "î": "i",
    "ï": "i",
    "û": "u",
    "ç": "c",
}


def _fullwidth_to_ascii(ch: str) -> str:
    # Fullwidth ASCII forms (U+FF01..U+FF5E) fold to ASCII under NFKC; nothing else is folded.
    return unicodedata.normalize("NFKC", ch) if "\uff01" <= ch <= "\uff5e" else ch


def normalize_for_gsm(text: str, *, strip_accents: bool = False) -> str:
    """Replace typographic look-alikes (smart quotes, dashes, ellipsis, odd spaces) with GSM-7 text.

    Characters that are already GSM-7 are kept; characters with no GSM-7 equivalent (emoji,
    most accented letters) are kept too, so the result may still be UCS-2.

    Args:
        text: the body to normalise.
        strip_accents: also replace accented letters outside GSM-7 (á í ó ú ...) by the bare letter.
            Off by default because it changes how Spanish words are spelt; ñ, é, ¿ and ¡ are GSM-7
            and always kept.

    Returns:
        The normalised text.
    """
    out: list[str] = []
    for ch in text:
        if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
            out.append(ch)
        elif ch in _GSM_EQUIVALENTS:
            out.append(_GSM_EQUIVALENTS[ch])
        elif strip_accents and ch in _ACCENT_EQUIVALENTS:
            out.append(_ACCENT_EQUIVALENTS[ch])
        else:
            out.append(_fullwidth_to_ascii(ch))
    return "".join(out)
