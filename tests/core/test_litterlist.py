"""The taxonomy's mapping onto the codes of the European litter list."""

from __future__ import annotations

import re

from plastic_hotspots.annotations.taxonomy import CLASS_NAMES
from plastic_hotspots.litterlist import LITTER_LIST_CODES, litter_list_codes


def test_every_class_has_codes_of_the_list_and_no_code_is_shared() -> None:
    assert set(LITTER_LIST_CODES) == set(CLASS_NAMES)
    codes = [code for name in CLASS_NAMES for code in LITTER_LIST_CODES[name]]
    assert all(re.fullmatch(r"G\d{1,3}", code) for code in codes)
    assert all(1 <= int(code[1:]) <= 213 for code in codes)  # the master list runs G1 ... G213
    assert len(codes) == len(set(codes))  # an item of the list belongs to one class at most
    assert all(LITTER_LIST_CODES[name] for name in CLASS_NAMES if name != "pile")


def test_codes_as_written_in_outputs() -> None:
    assert litter_list_codes("can") == "G175;G176"
    assert litter_list_codes("pile") == ""
    assert litter_list_codes("not-a-class") == ""
