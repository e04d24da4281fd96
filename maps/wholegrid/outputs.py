"""The files of a whole-grid run: its rasters as COGs, ``hotspots.gpkg``, the fusion report, provenance.

Every file goes through the atomic writers of :mod:`plastic_hotspots.maps.io.writers`; the vector
layers share their builders with the large mode (:mod:`plastic_hotspots.maps.science.vectors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from rasterio import features
from rasterio.transform import Affine
from shapely.geometry import shape
from shapely.ops import unary_union

from plastic_hotspots.maps.grid import grid_to_lonlat
from plastic_hotspots.maps.inputs.observations import Observations
from plastic_hotspots.maps.inputs.vectors import Barriers
from plastic_hotspots.maps.io.writers import write_cog, write_gpkg, write_provenance_json
from plastic_hotspots.maps.science import model
from plastic_hotspots.maps.science.vectors import (
    barrier_frame,
    basin_frame,
    hotspot_frame,
    river_chains,
    river_lines_frame,
)
from plastic_hotspots.maps.survey.cells import benjamini_hochberg, cells_frame, gi_star_permuted_at
from plastic_hotspots.maps.survey.density import DensityGrid, sparse_values_at
from plastic_hotspots.maps.survey.fusion import Calibration, write_fusion_report
from plastic_hotspots.maps.survey.smoothing import SmoothingChoice
from plastic_hotspots.records import GridSpec, HotspotGrid

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class HotspotOutputs:
    """Paths written by :func:`plastic_hotspots.maps.wholegrid.run.run_hotspots`."""

    directory: Path
    rasters: dict[str, Path]
    vectors: Path
    provenance: Path
    fusion: tuple[Path, Path] | None = None
    uncertainty: Path | None = None

    def moved_to(self, written: Path, final: Path) -> HotspotOutputs:
        """The same outputs after the folder ``written`` became ``final`` (paths under it rebased)."""

        def moved(path: Path) -> Path:
            return Path(final) / Path(path).relative_to(written)

        return HotspotOutputs(
            directory=Path(final),
            rasters={name: moved(path) for name, path in self.rasters.items()},
            vectors=moved(self.vectors),
            provenance=moved(self.provenance),
            fusion=(moved(self.fusion[0]), moved(self.fusion[1])) if self.fusion is not None else None,
            uncertainty=moved(self.uncertainty) if self.uncertainty is not None else None,
        )


@dataclass(frozen=True, slots=True, eq=False)
class RiverNetwork:
    """The rivers of a run and what was routed along them.

    Attributes:
        rivers: River cells (inside the basin).
        order: Strahler order of each river cell (int16).
        routing: Load carried and retained along the rivers.
        barriers: The barriers read, or None.
        barrier_cells: Flat river cell of each barrier, -1 where none was near.
    """

    rivers: BoolArray
    order: npt.NDArray[np.int16]
    routing: model.RiverRouting
    barriers: Barriers | None
    barrier_cells: list[int]


@dataclass(frozen=True, slots=True, eq=False)
class SurveyFit:
    """What a run made of a survey: its density, the calibration and the observed extra source.

    Attributes:
        obs: The observations inside the grid, or None without a survey.
        density: Effort-normalised density on the grid.
        smoothing: The smoothing the survey's tracks chose for the density.
        calibration: The fit of the model to the surveyed cells of the basin.
        far_cells: Flat surveyed cells far above the calibrated model (a source the layers miss).
        extra_cells: Flat cells of the observed extra source (kg/yr); none where the layers do not
            explain the survey (the calibration's conversion to kg/yr is then not a leakage figure).
        extra: Its value on each of ``extra_cells``.
    """

    obs: Observations | None = None
    density: DensityGrid | None = None
    smoothing: SmoothingChoice | None = None
    calibration: Calibration | None = None
    far_cells: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    extra_cells: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    extra: FloatArray = field(default_factory=lambda: np.zeros(0))


def write_outputs(
    result: HotspotGrid,
    out_dir: Path,
    *,
    basin: BoolArray,
    sub_labels: npt.NDArray[np.int32],
    down: IntArray,
    network: RiverNetwork,
    survey: SurveyFit,
    detections: gpd.GeoDataFrame | None,
    boundaries: gpd.GeoDataFrame | None,
) -> HotspotOutputs:
    """Write every output of a whole-grid run into ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rasters = _write_rasters(result, out_dir, basin)
    grid = result.grid
    vectors: dict[str, gpd.GeoDataFrame] = {
        "basin": basin_frame(
            str(result.provenance.parameters.get("basin", "basin")),
            float(basin.sum()),
            _polygons(basin, basin.view(np.uint8), grid).get(1),
            grid,
        ),
        "subbasins": _subbasins_frame(sub_labels, result, network.routing.retained),
        "rivers": _river_lines(down, network.rivers, network.order, grid),
    }
    if network.barriers is not None:
        retained = [
            float(network.routing.retained.ravel()[c]) if c >= 0 else 0.0 for c in network.barrier_cells
        ]
        vectors["barriers"] = barrier_frame(network.barriers, network.barrier_cells, retained, grid.crs)
    for kind in ("leakage", "accumulation"):
        vectors[f"{kind}_hotspots"] = hotspot_frame([h for h in result.hotspots if h.kind == kind])
    fusion: tuple[Path, Path] | None = None
    if survey.density is not None:
        vectors["observed_density"], fusion = _observed_density(result, out_dir, basin, survey)
    if boundaries is not None:
        vectors["admin_boundaries"] = boundaries
    if survey.obs is not None:
        vectors["survey_points"] = _survey_points(survey.obs, grid)
        if detections is not None and survey.obs.image is not None:
            vectors["detections"] = detections[detections["image"].isin(set(survey.obs.image.tolist()))]
    gpkg = write_gpkg(out_dir / "hotspots.gpkg", vectors, result.provenance)
    prov_path = write_provenance_json(out_dir / "provenance.json", result.provenance)
    return HotspotOutputs(
        directory=out_dir, rasters=rasters, vectors=gpkg, provenance=prov_path, fusion=fusion
    )


def _write_rasters(result: HotspotGrid, out_dir: Path, basin: BoolArray) -> dict[str, Path]:
    """Each layer as a COG, masked to the basin (the DEM whole)."""
    return {
        name: write_cog(
            out_dir / f"{name}.tif",
            layer.values,
            result.grid,
            result.provenance,
            description=layer.description,
            unit=layer.unit,
            mask=basin if name != "dem" else None,
        )
        for name, layer in result.layers.items()
    }


def _polygons(mask: BoolArray, labels: npt.NDArray[np.int32 | np.uint8], grid: GridSpec) -> dict[int, object]:
    """Dissolve labelled cells into one (multi)polygon per label, in the grid CRS."""
    geoms: dict[int, list[object]] = {}
    for geom, value in features.shapes(labels, mask=mask, transform=Affine(*grid.transform), connectivity=4):
        geoms.setdefault(int(value), []).append(shape(geom))
    return {k: unary_union(v) for k, v in geoms.items()}


def _subbasins_frame(
    sub_labels: npt.NDArray[np.int32], result: HotspotGrid, retained: FloatArray
) -> gpd.GeoDataFrame:
    """The ``subbasins`` layer: outline, area, leakage and accumulation of each sub-basin."""
    grid = result.grid
    subs = _polygons(sub_labels >= 0, sub_labels, grid)
    leak = result.layers["leakage_index"].values
    # Per-sub-basin sums in one pass over the grid each (labels -1, outside every sub-basin, dropped).
    slot = sub_labels.ravel().astype(np.int64) + 1
    size = int(slot.max()) + 1 if slot.size else 1
    cells = np.bincount(slot, minlength=size)
    leak_sum = np.bincount(slot, weights=leak.ravel(), minlength=size)
    retained_sum = np.bincount(slot, weights=retained.ravel(), minlength=size)
    del slot
    rows = [
        {
            "subbasin": label + 1,
            "name": f"Sub-basin {label + 1}",
            "area_km2": float(cells[label + 1]) * grid.cell_area_m2 / 1e6,
            "leakage_kg_yr": float(leak_sum[label + 1]),
            "accumulation_kg_yr": float(retained_sum[label + 1]),
            "geometry": geom,
        }
        for label, geom in sorted(subs.items())
    ]
    return gpd.GeoDataFrame(
        rows,
        columns=["subbasin", "name", "area_km2", "leakage_kg_yr", "accumulation_kg_yr", "geometry"],
        geometry="geometry",
        crs=grid.crs,
    )


def _river_lines(
    down: IntArray, rivers: BoolArray, order: npt.NDArray[np.integer], grid: GridSpec
) -> gpd.GeoDataFrame:
    """River network as lines (grid CRS), one multi-line per stream order (see :func:`river_lines_frame`)."""
    seg = np.flatnonzero(rivers.ravel() & (down >= 0))  # a segment from each of these cells
    x, y, point_line, line_order = river_chains(seg, down[seg], order.ravel()[seg], grid)
    return river_lines_frame(shapely.linestrings(x, y, indices=point_line), line_order, grid.crs)


def _observed_density(
    result: HotspotGrid, out_dir: Path, basin: BoolArray, survey: SurveyFit
) -> tuple[gpd.GeoDataFrame, tuple[Path, Path] | None]:
    """The ``observed_density`` layer (Gi*; the modelled rate when calibrated) and the fusion report.

    Gi* runs on each surveyed cell's own rate, with pseudo p-values by conditional randomisation
    and Benjamini-Hochberg q-values over the cells tested (``gi_q``), as ``density`` does.
    """
    density, calibration = survey.density, survey.calibration
    assert density is not None
    grid = result.grid
    l_src = result.layers["mismanaged_plastic"].values
    cells = cells_frame(density, grid)
    rr, cc = cells["row"].to_numpy(), cells["col"].to_numpy()
    # Gi* over the surveyed cells, without grids; observed cells that are not surveyed get NaN.
    surveyed = density.surveyed_cells()
    own = density.at("items", surveyed) / np.maximum(density.at("observations", surveyed), 1)
    gi_z, gi_p = gi_star_permuted_at(*np.divmod(surveyed, grid.width), own, grid.shape)
    observed = density.observed_cells()
    cells["gi_z"] = sparse_values_at(surveyed, gi_z, observed, np.nan)
    cells["gi_p"] = sparse_values_at(surveyed, gi_p, observed, np.nan)
    cells["gi_q"] = sparse_values_at(surveyed, benjamini_hochberg(gi_p), observed, np.nan)
    if calibration is None:
        return cells, None
    cells["modelled_rate"] = calibration.modelled_rate(l_src[rr, cc])
    cells["far_above_model"] = np.isin(observed, survey.far_cells)
    in_basin = surveyed[basin.ravel()[surveyed]]
    fusion = write_fusion_report(
        out_dir,
        grid,
        calibration,
        l_src,
        in_basin,
        density.at("rate", in_basin),
        density.at("rate_lo", in_basin),
        density.at("rate_hi", in_basin),
        basin,
    )
    return cells, fusion


def _survey_points(obs: Observations, grid: GridSpec) -> gpd.GeoDataFrame:
    """One point per observation (EPSG:4326): items, per-class counts, track, time, image and file."""
    lon, lat = grid_to_lonlat(grid, obs.x, obs.y)
    n = len(obs)
    blank = np.full(n, "")
    columns: dict[str, object] = {
        "items": obs.items.astype(np.int64),
        "track": obs.track,
        "captured_at": obs.captured_at if obs.captured_at is not None else blank,
        "image": obs.image if obs.image is not None else blank,
        "path": obs.path if obs.path is not None else blank,
    }
    for name, counts in obs.classes.items():
        columns[f"n_{name}"] = counts.astype(np.int64)
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
