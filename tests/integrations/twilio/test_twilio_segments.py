"""Segment counting at Twilio's boundaries, and GSM-7 normalisation."""

from __future__ import annotations

import pytest

from integrations.twilio import is_gsm7, normalize_for_gsm, segment_info
from integrations.twilio.segments import GSM7_BASIC, GSM7_EXTENSION

EXTENSION = ["\f", "^", "{", "}", "\\", "[", "]", "~", "|", "€"]


@pytest.mark.parametrize(
    ("body", "encoding", "segments", "units"),
    [
        ("a" * 160, "GSM-7", 1, 160),
        ("a" * 161, "GSM-7", 2, 161),
        ("a" * 153 * 2, "GSM-7", 2, 306),
        ("a" * (153 * 2 + 1), "GSM-7", 3, 307),
        ("a" * 153 * 3, "GSM-7", 3, 459),
        ("á" * 70, "UCS-2", 1, 70),
        ("á" * 71, "UCS-2", 2, 71),
        ("á" * 67 * 2, "UCS-2", 2, 134),
        ("á" * (67 * 2 + 1), "UCS-2", 3, 135),
        ("", "GSM-7", 1, 0),
    ],
)
def test_boundaries(body: str, encoding: str, segments: int, units: int) -> None:
    info = segment_info(body)
    assert (info.encoding, info.segments, info.units, info.characters) == (
        encoding,
        segments,
        units,
        len(body),
    )


@pytest.mark.parametrize("char", EXTENSION)
def test_each_extension_character_takes_two_septets(char: str) -> None:
    assert char in GSM7_EXTENSION
    fits = segment_info("a" * 158 + char)
    assert (fits.encoding, fits.units, fits.segments) == ("GSM-7", 160, 1)
    spills = segment_info("a" * 159 + char)
    assert (spills.encoding, spills.units, spills.segments) == ("GSM-7", 161, 2)


def test_extension_table_is_exactly_the_documented_set() -> None:
    assert set(EXTENSION) == GSM7_EXTENSION
    assert len(GSM7_BASIC) == 127 and not GSM7_BASIC & GSM7_EXTENSION
    assert "\x1b" not in GSM7_BASIC  # the escape code is not a character a body may contain


def test_escape_pair_is_never_split_across_segments() -> None:
    # 306 septets would fit two segments of 153, but the escape pair at 153-154 moves to segment 2.
    body = "a" * 152 + "{" + "a" * 152
    info = segment_info(body)
    assert (info.units, info.segments) == (306, 3)
    assert segment_info("a" * 151 + "{" + "a" * 153).segments == 2  # pair fits exactly at 152-153


def test_surrogate_pair_is_never_split_across_segments() -> None:
    body = "a" * 66 + "😀" + "a" * 66  # 134 UTF-16 units = 2 x 67, but the emoji straddles 67
    info = segment_info(body)
    assert (info.encoding, info.units, info.segments) == ("UCS-2", 134, 3)
    assert segment_info("a" * 65 + "😀" + "a" * 67).segments == 2


def test_emoji_count_two_units() -> None:
    assert (segment_info("😀" * 35).units, segment_info("😀" * 35).segments) == (70, 1)
    assert (segment_info("😀" * 36).units, segment_info("😀" * 36).segments) == (72, 2)
    assert segment_info("Thanks 👍").encoding == "UCS-2"


def test_twilio_calculator_vectors() -> None:
    # From Twilio's message-segment-calculator test suite (escape in 1 and 2 segments, UCS-2 emoji).
    digits = "".join(str(i % 10) for i in range(2, 400))
    assert segment_info("{" + digits[:158]).segments == 1
    assert segment_info("{" + digits[:159]).segments == 2
    assert segment_info("😜" + digits[:68]).segments == 1
    assert segment_info("😜" + digits[:69]).segments == 2


@pytest.mark.parametrize("char", ["é", "É", "ñ", "Ñ", "¿", "¡", "ü", "Ü", "à", "è", "ù", "ì", "ò", "Ç"])
def test_gsm7_accented_letters_stay_gsm7(char: str) -> None:
    assert segment_info("Hola " + char).encoding == "GSM-7"


@pytest.mark.parametrize("char", ["á", "í", "ó", "ú", "Á", "Í", "Ó", "Ú", "ç", "’", "“", "—", "…", "\u00a0"])
def test_other_characters_force_ucs2(char: str) -> None:
    assert segment_info("Hola " + char).encoding == "UCS-2"


def test_spanish_examples() -> None:
    assert segment_info("¿Qué tal, señor? Mañana le llamamos.").encoding == "GSM-7"
    assert segment_info("Hola, ¿cómo está? Responda 1 para surtir.").encoding == "UCS-2"


def test_mixed_body_counts_everything_in_ucs2() -> None:
    body = "Refill {ready} " + "é" + "💊"
    info = segment_info(body)
    assert info.encoding == "UCS-2"
    assert info.units == len(body) + 1  # braces are 1 unit in UCS-2, the pill emoji 2
    assert info.characters == len(body)


def test_crlf_stays_gsm7() -> None:
    assert segment_info("a\r\nb").encoding == "GSM-7" and segment_info("a\r\nb").units == 4


def test_normalize_replaces_typographic_lookalikes() -> None:
    text = "“Your refill’s ready” — pick up 9–5… today\u00a0only\u200b"
    normal = normalize_for_gsm(text)
    assert normal == '"Your refill\'s ready" - pick up 9-5... today only'
    assert is_gsm7(normal) and segment_info(normal).encoding == "GSM-7"


def test_normalize_keeps_what_has_no_equivalent() -> None:
    assert normalize_for_gsm("¿Cómo está? 💊") == "¿Cómo está? 💊"
    assert normalize_for_gsm("¿Cómo está? ñ", strip_accents=True) == "¿Como esta? ñ"
    assert normalize_for_gsm("ＡＢＣ１２３") == "ABC123"
    assert normalize_for_gsm("plain {text} €5") == "plain {text} €5"
