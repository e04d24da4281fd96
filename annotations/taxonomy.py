"""The litter taxonomy volunteers label with, and the Label Studio labelling interface built from it.

The classes follow what street and riverbank surveys find and what matters downstream: items that float
and travel (bottles, bags and films, wrappers and sachets, foam), items that sink or stay (cans, glass),
and piles, which are dumping sites rather than single items. The order here is the class order of every
dataset and model the project makes (Label Studio's own exports renumber classes alphabetically; the
project never uses those numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr


@dataclass(frozen=True, slots=True)
class LitterClass:
    """One class of the taxonomy: its label, colour in the labelling tool, and what belongs in it."""

    name: str
    colour: str
    description: str


TAXONOMY: tuple[LitterClass, ...] = (
    LitterClass("bottle", "#1f77b4", "Plastic drink bottles and their caps, any size, whole or crushed."),
    LitterClass("bag_film", "#ff7f0e", "Carrier bags, bin liners, cling film and other soft sheet plastic."),
    LitterClass(
        "wrapper_sachet", "#2ca02c", "Food wrappers, crisp packets, sachets of shampoo, sauce or coffee."
    ),
    LitterClass(
        "cup_container", "#d62728", "Cups, lids, straws, takeaway boxes and other rigid food packaging."
    ),
    LitterClass("foam", "#9467bd", "Expanded polystyrene: food boxes, packaging blocks, fragments."),
    LitterClass("can", "#8c564b", "Metal drink and food cans."),
    LitterClass("glass", "#e377c2", "Glass bottles and jars, whole or broken."),
    LitterClass("textile", "#7f7f7f", "Clothes, shoes, sacks and fishing net or rope."),
    LitterClass("other_plastic", "#bcbd22", "Any other plastic item: toys, pipes, containers, fragments."),
    LitterClass(
        "pile", "#17becf", "A heap of mixed waste: draw one box around the whole heap, not its items."
    ),
)

CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in TAXONOMY)

INSTRUCTIONS = """<h3>Help find where plastic enters rivers</h3>
<p>Draw a box around <b>every piece of litter</b> you can see, and pick what it is. Boxes should be tight:
touch the edges of the item. Several volunteers label every photo and their boxes are combined, so label
what you see; do not guess what others would do.</p>
<ul>
<li>Partly hidden items: box the visible part.</li>
<li>A heap of mixed waste: one <b>pile</b> box around the whole heap.</li>
<li>Nothing there? Submit the photo with no boxes: that is an answer too.</li>
<li>Unsure what an item is: use <b>other_plastic</b> if it is plastic, otherwise skip it.</li>
</ul>
"""


def class_table() -> str:
    """The taxonomy as an HTML list, for the instructions shown to volunteers."""
    rows = "".join(f"<li><b>{escape(c.name)}</b>: {escape(c.description)}</li>" for c in TAXONOMY)
    return f"<ul>{rows}</ul>"


def label_config(classes: tuple[LitterClass, ...] = TAXONOMY) -> str:
    """Label Studio labelling interface: an image with RectangleLabels for every class.

    The image comes from the task's ``image`` field; its position and time are shown under it so
    volunteers can tell riverbank from street.
    """
    labels = "\n".join(
        f"    <Label value={quoteattr(c.name)} background={quoteattr(c.colour)}"
        f" hint={quoteattr(c.description)}/>"
        for c in classes
    )
    return f"""<View>
  <Image name="image" value="$image" zoom="true" zoomControl="true" rotateControl="false"/>
  <RectangleLabels name="label" toName="image" strokeWidth="2">
{labels}
  </RectangleLabels>
  <Text name="where" value="$place"/>
</View>
"""
