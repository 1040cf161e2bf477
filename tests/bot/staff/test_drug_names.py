"""The drug-name check staff replies go through knows brand and generic names (issue 16: Xeljanz was missed)."""

from __future__ import annotations

import pytest

from bot.staff.tasks import drug_mentions
from conversations.symptoms import drug_names


@pytest.mark.parametrize(
    ("body", "drugs", "found"),
    [
        ("Your Xeljanz is ready", ["Tofacitinib 5 mg"], ["Tofacitinib 5 mg"]),
        ("Your tofacitinib is ready", ["Xeljanz XR 11 mg"], ["Xeljanz XR 11 mg"]),
        ("Your XELODA refill shipped", ["Capecitabine 500 mg"], ["Capecitabine 500 mg"]),
        ("Your refill shipped", ["Capecitabine 500 mg"], []),
        ("Call us about Zytigas", ["Abiraterone 250 mg"], []),  # a whole word only
    ],
)
def test_brand_and_generic_names_are_both_caught(body: str, drugs: list[str], found: list[str]) -> None:
    assert drug_mentions(body, drugs) == found


def test_drug_names_lists_the_generic_then_its_brands() -> None:
    assert drug_names("Abiraterone acetate 250 mg") == ("abiraterone", "yonsa", "zytiga")
    assert drug_names("an unknown compound") == ()
