"""The real basin end to end, from its public layers as given: the Maha Oya, Sri Lanka.

The config names the shared files as they are: three SRTM tiles as a list, the census divisions as the
population (a count column) and the zones (the collection rate as a ratio of two household columns),
HydroRIVERS and the Mawanella survey. Nothing is prepared by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from plastic_hotspots.maps.config import load_config
from plastic_hotspots.maps.wholegrid.run import run_hotspots

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

GENERATION_KG_PER_CAP_DAY = 0.34
"""Sri Lanka in What a Waste 2.0: 2,631,650 t/yr for 21.2 million people (docs/hotspot-model.md)."""
PLASTIC_SHARE = 0.07
"""Sri Lanka's plastic share of municipal solid waste in What a Waste 2.0."""


def maha_oya_config(data: Path, out: Path) -> Path:
    """The basin config, built only from the shared files as given."""
    census = str(data / "census" / "gnd_mahaoya_region_census2012.geojson")
    config = {
        "name": "Maha Oya, Sri Lanka",
        "cell_size_m": 100,
        "outlet": [79.844, 7.273],  # the mouth (SOURCE.md)
        "layers": {
            "dem": [
                str(data / "dem" / n)
                for n in ("n07_e079_3arc_v2.tif", "n07_e080_3arc_v2.tif", "n06_e080_3arc_v2.tif")
            ],
            "population": {"path": census, "count": "total_population"},
            "zones": {
                "path": census,
                "collection_rate": "collected_by_local_authorities / total_households",
                "generation_kg_per_cap_day": GENERATION_KG_PER_CAP_DAY,
                "plastic_share": PLASTIC_SHARE,
            },
            "rivers": str(data / "rivers" / "hydrorivers_maha_oya_41404427.geojson"),
            "observations": str(data / "survey" / "Mawanella_January_2022_A.geojson"),
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "basin.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.filterwarnings("ignore::plastic_hotspots.maps.errors.LayerWarning")
def test_the_maha_oya_from_its_public_layers(shared_data: Path, tmp_path: Path) -> None:
    config = load_config(maha_oya_config(shared_data / "maha_oya_srilanka", tmp_path))
    result, outputs = run_hotspots(config, tmp_path / "out")
    leakage = float(result.layers["leakage_index"].values.sum())
    retained = float(result.layers["accumulation"].values.sum())
    figures = result.provenance.parameters
    exported = float(figures["exported_kg_yr"] or 0.0)
    fusion = json.loads((tmp_path / "out" / "fusion.json").read_text())["calibration"]
    uncertainty = json.loads((tmp_path / "out" / "uncertainty.json").read_text())
    for name, total in uncertainty["totals"].items():
        print(f"{name}: {total['value']:,.0f} kg/yr, 5-95 % {total['p5']:,.0f} to {total['p95']:,.0f}")
        assert total["p5"] <= total["value"] <= total["p95"], name
    assert uncertainty["draws"] > 0
    print(
        f"Maha Oya: into rivers {leakage:,.0f} kg/yr, retained {retained:,.0f}, exported {exported:,.0f}; "
        f"calibration deviance explained {fusion['deviance_explained']:.4f} in sample, held out "
        f"{fusion['held_out_deviance']:,.0f} against {fusion['held_out_null_deviance']:,.0f} for one "
        f"area-wide rate, explains the survey: {fusion['explains_survey']}"
    )
    assert exported > 0
    assert abs(leakage - retained - exported) <= 1e-3 * leakage
    assert fusion["deviance_explained"] >= 0.0
    assert fusion["deviance"] <= fusion["null_deviance"]
    if not fusion["explains_survey"]:
        # The layers explain nothing on held-out tracks: no observed litter turned into kg/yr.
        assert fusion["held_out_deviance"] >= 0.98 * fusion["held_out_null_deviance"]
        leakage_hotspots = [h for h in result.hotspots if h.kind == "leakage"]
        assert all(h.drivers["observed_extra_kg_yr"] == 0.0 for h in leakage_hotspots)
        assert all(h.driver != "observed litter" for h in leakage_hotspots)
    assert outputs.vectors.is_file()
