"""The project's litter classes as codes of the standard European litter list, for reporting to agencies.

The Joint List of Litter Categories for Marine Macrolitter Monitoring (Fleet, Vlachogianni and Hanke,
JRC 2021, EUR 30348 EN) carries over the item codes of the MSFD master list (``G1`` ... ``G213``), also used
by OSPAR beach-litter monitoring. The project's classes are coarser than those items, so a class maps to
the set of codes whose items it covers, checked against the master list's names:

======================  ====================================================================================
class                   codes
======================  ====================================================================================
bottle                  G7 plastic bottles <= 0.5 l, G8 plastic bottles > 0.5 l, G21 caps/lids of drinks
bag_film                G3 shopping bags incl. pieces, G4 small plastic bags, G67 sheets and plastic sheeting
wrapper_sachet          G30 crisps packets and sweets wrappers
cup_container           G10 food containers incl. fast food, G33 cups and cup lids, G34 cutlery and trays,
                        G35 straws and stirrers
foam                    G82 polystyrene pieces 2.5-50 cm, G83 polystyrene pieces > 50 cm
can                     G175 cans (beverage), G176 cans (food)
glass                   G200 glass bottles incl. pieces, G201 jars incl. pieces, G208 glass fragments
textile                 G137 clothing and rags, G138 shoes and sandals, G140 sacking, G145 other textiles
other_plastic           G79 plastic pieces 2.5-50 cm, G80 plastic pieces > 50 cm, G124 other plastic items
pile                    none: a heap of mixed waste is a dumping site, not an item of the list
======================  ====================================================================================
"""

from __future__ import annotations

#: Class -> the litter-list item codes it covers (empty: no item of the list).
LITTER_LIST_CODES: dict[str, tuple[str, ...]] = {
    "bottle": ("G7", "G8", "G21"),
    "bag_film": ("G3", "G4", "G67"),
    "wrapper_sachet": ("G30",),
    "cup_container": ("G10", "G33", "G34", "G35"),
    "foam": ("G82", "G83"),
    "can": ("G175", "G176"),
    "glass": ("G200", "G201", "G208"),
    "textile": ("G137", "G138", "G140", "G145"),
    "other_plastic": ("G79", "G80", "G124"),
    "pile": (),
}

#: The column name in outputs.
COLUMN = "litter_list_codes"


def litter_list_codes(class_name: str) -> str:
    """The codes of a class, ``;``-separated (``"G7;G8;G21"``); empty for a pile or an unknown class."""
    return ";".join(LITTER_LIST_CODES.get(class_name, ()))
