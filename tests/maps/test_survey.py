"""Observed density from surveys: pLitter tracks, Gi*, and a held-out test on the Chiang Rai tracks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic_hotspots.maps.grid import grid_for_bounds, lonlat_to_grid, rowcol
from plastic_hotspots.maps.inputs.observations import read_plitter_tracks
from plastic_hotspots.maps.survey.cells import getis_ord_gi_star, survey_density
from plastic_hotspots.maps.survey.density import poisson_deviance


def test_gi_star_finds_a_hot_cluster() -> None:
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 0.5, size=(20, 20))
    values[8:11, 8:11] += 6.0
    valid = np.ones_like(values, dtype=bool)
    valid[0, :] = False
    z, p = getis_ord_gi_star(values, valid)
    assert z[9, 9] > 5
    assert p[9, 9] < 1e-6
    assert abs(np.nanmedian(z)) < 1
    assert np.isnan(z[0, 5])


def _gi_star_by_convolution(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gi* over the whole grid with 3x3 convolutions: the reference for the per-valid-cell sums."""
    from scipy import ndimage, stats

    n = int(valid.sum())
    x = np.where(valid, values, 0.0)
    mean = float(x[valid].mean())
    s = float(np.sqrt((x[valid] ** 2).mean() - mean**2))
    local_sum = ndimage.convolve(x, np.ones((3, 3)), mode="constant")
    w_sum = ndimage.convolve(valid.astype(float), np.ones((3, 3)), mode="constant")
    gi = (local_sum - mean * w_sum) / (s * np.sqrt(np.clip((n * w_sum - w_sum**2) / (n - 1), 1e-12, None)))
    return np.where(valid, gi, np.nan), np.where(valid, 2 * stats.norm.sf(np.abs(gi)), np.nan)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_gi_star_on_the_valid_cells_equals_the_whole_grid_convolution(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
    values = rng.gamma(0.5, 3.0, shape)
    valid = rng.random(shape) < rng.uniform(0.05, 1.0)
    if valid.sum() < 3 or np.ptp(values[valid]) == 0:
        return
    z, p = getis_ord_gi_star(values, valid)
    z_ref, p_ref = _gi_star_by_convolution(values, valid)
    np.testing.assert_array_equal(z, z_ref)  # the same sums in the same order: equal to the last bit
    np.testing.assert_array_equal(p, p_ref)
    z_nan, _ = getis_ord_gi_star(np.where(valid, values, np.nan), valid)  # values off ``valid`` are not read
    np.testing.assert_array_equal(z_nan, z)


def test_gi_star_of_a_survey_in_the_corners_of_a_large_grid() -> None:
    values = np.zeros((3000, 2000))
    valid = np.zeros(values.shape, dtype=bool)
    valid[:3, :3] = valid[-2:, -3:] = valid[1500, 1000] = True
    values[:3, :3] = [[1.0, 2.0, 3.0], [2.0, 9.0, 2.0], [1.0, 2.0, 1.0]]
    values[-2:, -3:] = 0.5
    z, p = getis_ord_gi_star(values, valid)
    z_ref, p_ref = _gi_star_by_convolution(values, valid)
    np.testing.assert_array_equal(z, z_ref)
    np.testing.assert_array_equal(p, p_ref)
    assert int(np.isfinite(z).sum()) == 16
    assert z[1, 1] > z[-1, -1]


def test_plitter_reader_and_cli(tmp_path: Path) -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature",
         "geometry": {"type": "LineString", "coordinates": [[100.0, 20.0], [100.001, 20.0]]},
         "properties": {"video": "v1", "track": [[100.0, 20.0, 0, 103, 2, 1, 1, 5],
                                                  [100.001, 20.0, 1000, 0, 0, 0, 0, 0]]}},
    ]}  # fmt: skip
    path = tmp_path / "t.geojson"
    path.write_text(json.dumps(doc))
    frame = read_plitter_tracks(path)
    assert frame["items"].tolist() == [4.0, 0.0]  # c1 + c2 + c3; bins (c4) are not litter
    assert frame["n_c4"].tolist() == [5.0, 0.0]
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "plastic_hotspots.cli", "density", str(path), "--cell-size", "50",
           "--out", str(tmp_path / "cells.gpkg")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cells = gpd.read_file(tmp_path / "cells.gpkg")
    assert cells.crs.to_epsg() == 4326
    assert {"observations", "effort_km", "items", "rate", "rate_lo", "rate_hi", "gi_z", "gi_p", "low_effort",
            "n_c1", "n_c4"} <= set(cells.columns)  # fmt: skip
    assert cells["observations"].sum() == 2
    assert cells["low_effort"].all()  # one observation per cell is too little to call anything
    tracks = gpd.read_file(tmp_path / "cells.gpkg", layer="tracks")
    assert tracks["track"].tolist() == ["v1"]
    assert tracks["effect"].tolist() == [1.0]
    assert tracks.geometry.iloc[0].length == pytest.approx(0.001)


def held_out_deviances(frame: gpd.GeoDataFrame, pick: set[str], cell: float) -> dict[str, float]:
    """Fit on the tracks in ``pick``, predict the other tracks' items per cell from their observations."""
    lon, lat = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    grid = grid_for_bounds((lon.min() - 1e-6, lat.min() - 1e-6, lon.max() + 1e-6, lat.max() + 1e-6), cell)
    shape = (grid.height, grid.width)
    half_a, half_b = frame[frame["track"].isin(pick)], frame[~frame["track"].isin(pick)]
    a = survey_density(half_a, cell, grid=grid).density
    x, y = lonlat_to_grid(grid, half_b.geometry.x.to_numpy(), half_b.geometry.y.to_numpy())
    r, c, inside = rowcol(grid, x, y)
    flat = r[inside] * grid.width + c[inside]
    obs_b = np.bincount(flat, minlength=shape[0] * shape[1]).reshape(shape)
    weights = half_b["items"].to_numpy()[inside]
    items_b = np.bincount(flat, weights=weights, minlength=shape[0] * shape[1]).reshape(shape)
    cells = obs_b > 0
    rate_a = np.where(np.isfinite(a.rate), a.rate, a.area_rate)
    predictions = {
        "ours": rate_a[cells] * obs_b[cells],
        "single": a.area_rate * obs_b[cells],
        "raw": a.items[cells] * (items_b.sum() / a.items.sum()),  # pLitter-style counts, no effort
    }
    return {name: poisson_deviance(items_b[cells], mu) for name, mu in predictions.items()}


@pytest.mark.realdata
@pytest.mark.parametrize("cell", [250.0, 500.0, 1000.0])
def test_chiang_rai_density_predicts_held_out_tracks(shared_data: Path, cell: float) -> None:
    """Density from half of the videos predicts the item counts of the other half.

    Ten random halvings of the videos, plus one with the videos alternated in name order (neighbouring
    videos, often the same street on the same day, fall on different sides).
    """
    path = shared_data / "plitter_street_tracks" / "tracks" / "ChiangRai_September_2021.geojson"
    frame = read_plitter_tracks(path)
    tracks = np.array(sorted(frame["track"].unique()))
    halves = [
        np.random.default_rng(seed).choice(tracks, len(tracks) // 2, replace=False) for seed in range(10)
    ]
    runs = [held_out_deviances(frame, set(half.tolist()), cell) for half in halves]
    alternating = held_out_deviances(frame, set(tracks[::2].tolist()), cell)
    mean = {k: float(np.mean([run[k] for run in runs])) for k in runs[0]}
    wins = sum(run["ours"] < run["single"] for run in runs)
    print(
        f"held-out halves ({cell:.0f} m cells), mean Poisson deviance over 10 random splits by video: "
        f"ours {mean['ours']:.0f}, single area rate {mean['single']:.0f}, raw counts {mean['raw']:.0f}; "
        f"ours beats the single rate in {wins}/10; alternating split: ours {alternating['ours']:.0f}, "
        f"single {alternating['single']:.0f}, raw {alternating['raw']:.0f}"
    )
    assert mean["ours"] < mean["single"]
    assert mean["ours"] < mean["raw"]
    assert wins >= 8
    assert all(run["ours"] < run["raw"] for run in runs)
    assert alternating["ours"] < alternating["single"]
    assert alternating["ours"] < alternating["raw"]
