from __future__ import annotations

from pathlib import Path

import pytest

from plastic_hotspots.errors import ConfigError, ConfigWarning
from plastic_hotspots.maps.config import load_config, parse_config
from plastic_hotspots.maps.params import HotspotParams


def test_relative_paths_resolve_against_the_config(tmp_path: Path) -> None:
    path = tmp_path / "basin.yaml"
    path.write_text("name: x\nlayers:\n  dem: data/dem.tif\nparams:\n  land_lambda_m: 250\n")
    config = load_config(path)
    assert config.dem == (tmp_path / "data" / "dem.tif").resolve()
    assert config.params.land_lambda_m == 250
    assert config.params.river_mu_km == HotspotParams().river_mu_km


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"layers": {"dem": "a.tif"}, "colour": "red"}, "unknown config key"),
        ({"layers": {"dem": "a.tif", "roads": "r.gpkg"}}, "unknown layer"),
        ({"layers": {"population": "p.tif"}}, "no `dem` layer"),
        ({"layers": {"dem": "a.tif"}, "params": {"lambda": 3}}, "unknown model parameter"),
        ({"layers": {"dem": "a.tif"}, "params": {"barrier_pass": {"canal": 0.5}}}, "unknown barrier_pass"),
        ({"layers": {"dem": "a.tif"}, "params": {"land_lambda_m": -1}}, "land_lambda_m must be a number > 0"),
        ({"layers": {"dem": "a.tif"}, "outlet": [1, 2, 3]}, "list of 2 numbers"),
        (["not", "a", "mapping"], "must be a mapping"),
        # Impossible numbers and wrong types name the key, what was expected and what came.
        ({"layers": {"dem": "a.tif"}, "params": {"barrier_pass": {"dam": -3}}},
         r"barrier_pass.dam must be a number in \[0, 1\] \(a fraction\), got -3"),
        ({"layers": {"dem": "a.tif"}, "params": {"zone_defaults": {"generation_kg_per_cap_day": -1}}},
         "generation_kg_per_cap_day must be a number >= 0"),
        ({"layers": {"dem": "a.tif"}, "params": {"zone_defaults": {"collection_rate": "high"}}},
         "collection_rate must be a number in .* got 'high'"),
        ({"layers": {"dem": "a.tif"}, "params": {"min_observations": -5}},
         "min_observations must be a whole number >= 1"),
        ({"layers": {"dem": "a.tif"}, "params": {"top_n": 2.5}},
         "top_n must be a whole number >= 1, got 2.5"),
        ({"layers": {"dem": "a.tif"}, "cell_size_m": "hundred"}, "cell_size_m must be a number > 0"),
        ({"layers": {"dem": "a.tif"}, "params": {"cell_size_m": float("nan")}},
         "cell_size_m must be a number"),
        ({"layers": {"dem": "a.tif"}, "params": [1, 2]}, "`params` must be a mapping"),
        ({"layers": {"dem": "a.tif"}, "params": {"barrier_pass": 0.5}},
         "`params: barrier_pass` must be a mapping"),
    ],
)  # fmt: skip
def test_bad_configs_say_what_is_wrong(raw: object, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, tmp_path)


def test_a_retired_parameter_is_ignored_with_a_warning_that_says_what_replaced_it(tmp_path: Path) -> None:
    raw = {"layers": {"dem": "a.tif"}, "params": {"prior_strength_obs": 5, "top_n": 4}}
    with pytest.warns(ConfigWarning, match="prior_strength_obs` has no effect .* cross-validation"):
        config = parse_config(raw, tmp_path)
    assert config.params.top_n == 4
    assert "prior_strength_obs" not in config.params.flat()  # provenance records only what was used


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("layers: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_flat_parameters_for_provenance() -> None:
    flat = HotspotParams().flat()
    assert flat["barrier_pass.dam"] == 0.15
    assert flat["zone_defaults.collection_rate"] == 0.2
    with pytest.raises(ConfigError, match="unknown barrier kind"):
        HotspotParams().barrier_pass.for_kind("canal")
