"""The offline interactive map: self-contained HTML, every layer, escaped text, and a real browser."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from browser import chromium_available, run_headless
from conftest import in_ci
from render_fixture import HOSTILE, PHOTOS, write_result_dir

from plastic_hotspots.maps.errors import RenderError
from plastic_hotspots.maps.render import layers as maplayers
from plastic_hotspots.maps.render import rasters as rasterimg
from plastic_hotspots.maps.render import webmap as render
from plastic_hotspots.maps.render.rasters import hillshade
from plastic_hotspots.maps.render.text import popup_content
from plastic_hotspots.maps.render.webmap import render_map

LAYER_NAMES = (
    render.LAYER_BASEMAP,
    render.LAYER_OSM,
    render.LAYER_LEAKAGE,
    render.LAYER_ACCUMULATION,
    render.LAYER_LEAKAGE_HOTSPOTS,
    render.LAYER_DENSITY,
    render.LAYER_RIVERS,
    render.LAYER_BARRIERS,
    render.LAYER_BASIN,
    render.LAYER_SURVEY,
)
EXPECTED_NAMES = (
    "Basemap (offline)",
    "OpenStreetMap (online)",
    "Leakage-source index",
    "Accumulation hotspots",
    "Leakage hotspots",
    "Observed density",
    "Rivers",
    "Barriers",
    "Basin and sub-basins",
    "Survey photos",
)
ESCAPED_HOSTILE = html.escape(HOSTILE)  # &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;


def unescape_js(text: str) -> str:
    """Undo the \\uXXXX escapes that folium's JSON embedding applies to <, >, & and '."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


@pytest.fixture(scope="module")
def result_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_result_dir(tmp_path_factory.mktemp("result") / "hotspots")


@pytest.fixture(scope="module")
def page(result_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_map(result_dir, tmp_path_factory.mktemp("map") / "out" / "map.html", title="Test <map>")


@pytest.fixture(scope="module")
def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def test_writes_one_self_contained_file(page: Path, text: str) -> None:
    assert page.is_file()
    assert [p.name for p in page.parent.iterdir()] == ["map.html"]  # no temporary file left behind
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.IGNORECASE), "a script is loaded, not inlined"
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", text, re.IGNORECASE), "a CDN link"
    assert not re.search(r"\bsrc\s*=\s*[\"']?(https?:)?//", text, re.IGNORECASE)  # no remote image or frame
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", text, re.IGNORECASE)  # nor CSS background
    assert "Leaflet 1.9" in text  # Leaflet's own banner: the library is inlined
    assert ".leaflet-container" in text  # and so is its CSS
    assert "url(images/" not in text  # with its images as data: URIs
    assert "L.map(" in text
    for cdn in ("jquery", "bootstrap", "font-awesome", "fontawesome", "d3.min.js", "cdn."):
        assert cdn not in text.lower(), cdn
    assert "<title>Test &lt;map&gt;</title>" in text
    assert "data:image/png;base64," in text  # the basemap and the leakage index are embedded


def test_every_layer_is_named(text: str) -> None:
    assert LAYER_NAMES == EXPECTED_NAMES
    for name in EXPECTED_NAMES:
        assert json.dumps(name) in text or name in text, name


def test_text_from_files_is_escaped(text: str) -> None:
    decoded = unescape_js(text)
    assert "<script>alert(" not in text
    assert "<script>alert(" not in decoded  # not even inside the embedded GeoJSON
    assert ESCAPED_HOSTILE in decoded  # the barrier's name, shown as text in its popup and tooltip
    assert "<img src=x" not in decoded
    assert "&lt;img src=x onerror=alert(2)&gt;" in decoded  # a leakage hotspot's driver
    assert "&lt;b&gt;bold&lt;/b&gt;.jpg" in decoded  # an image name
    assert "Nam Test &lt;b&gt;basin&lt;/b&gt;" in text  # the basin name, in the title box
    assert "<b>basin</b>" not in decoded


def test_popup_content_escapes_everything() -> None:
    content = popup_content("<i>t</i>", [("<k>", "<v>&")])
    assert content == ["&lt;i&gt;t&lt;/i&gt;", [["&lt;k&gt;", "&lt;v&gt;&amp;"]]]
    out = json.dumps(content)
    for raw in ("<i>", "<k>", "<v>"):
        assert raw not in out
    for escaped in ("&lt;i&gt;t&lt;/i&gt;", "&lt;k&gt;", "&lt;v&gt;&amp;"):
        assert escaped in out


def test_unsurveyed_cells_are_not_called_clean(text: str) -> None:
    decoded = unescape_js(text)
    assert "not surveyed: too few observations to estimate a rate" in decoded
    assert "ph-unsurveyed" in text  # its own legend swatch
    assert '"dashArray": "3 3"' in decoded  # drawn grey and dashed
    assert "clean" not in decoded.lower()


def test_provenance_in_footer_and_bounds_fit_basin(text: str) -> None:
    assert "0.1.0-test" in text
    assert "2024-06-01T12:00:00+00:00" in text
    page_script = text[text.rindex("= L.map(") :]  # after the inlined Leaflet
    calls = re.findall(r"\.fitBounds\(\s*(\[\[[-0-9., \]\[]*\]\])", page_script)
    assert len(calls) == 1
    (south, west), (north, east) = json.loads(calls[0])
    assert 20.15 < south < north < 20.25
    assert 100.05 < west < east < 100.15


def test_missing_directory_raises(tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    with pytest.raises(RenderError, match="result directory not found") as info:
        render_map(tmp_path / "nowhere", out)
    assert "plastic-hotspots hotspots --config basin.yaml --out DIR" in str(info.value)
    assert not out.exists()


def test_missing_geopackage_raises(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RenderError, match=r"no hotspots\.gpkg") as info:
        render_map(tmp_path / "empty", tmp_path / "map.html")
    assert "plastic-hotspots hotspots" in info.value.hint
    assert not (tmp_path / "map.html").exists()


def test_missing_basin_layer_raises(tmp_path: Path) -> None:
    result = write_result_dir(tmp_path / "r", layers=("rivers",))
    with pytest.raises(RenderError, match="no basin outline"):
        render_map(result, tmp_path / "map.html")


def test_optional_layers_may_be_missing(tmp_path: Path) -> None:
    result = write_result_dir(tmp_path / "r", layers=("basin",), provenance=False)
    (result / "leakage_index.tif").unlink()
    page = render_map(result, tmp_path / "map.html")
    text = page.read_text(encoding="utf-8")
    for present in (render.LAYER_BASEMAP, render.LAYER_BASIN):
        assert present in text
    for absent in (render.LAYER_LEAKAGE, render.LAYER_RIVERS, render.LAYER_SURVEY, render.LAYER_DENSITY):
        assert absent not in text, absent
    assert "provenance.json not found" in text


def test_many_survey_photos_are_binned_and_the_legend_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maplayers, "MAX_SURVEY_POINTS", 10)
    result = write_result_dir(tmp_path / "r", layers=("basin", "survey_points"), n_survey=40)
    text = render_map(result, tmp_path / "map.html").read_text(encoding="utf-8")
    decoded = unescape_js(text)
    assert re.search(r"40 photos in \d+ squares of [\d,]+ m", decoded)
    assert "every photo is counted" in decoded
    assert "IMG_000" not in decoded  # no photo drawn one by one
    photos = json.loads(re.search(r'"photos": (\[[^\]]*\])', decoded).group(1))  # type: ignore[union-attr]
    assert sum(photos) == 40


def test_survey_layers_thumbnails_and_filters(text: str) -> None:
    decoded = unescape_js(text)
    assert render.LAYER_GI in decoded
    assert decoded.count("data:image/jpeg;base64,/9j/") == PHOTOS  # one JPEG thumbnail per readable photo
    assert 'id="ph-filter"' in text
    assert 'type="date" name="from" value="2024-05-01"' in text
    assert 'name="to" value="2024-05-02"' in text
    assert '<option value="bag_film">bag_film</option>' in text
    assert '"fills": {"bottle"' in decoded or '"fills": {"bag_film"' in decoded  # per-class colours


def test_change_between_two_surveys(result_dir: Path, tmp_path: Path) -> None:
    import geopandas as gpd

    before = tmp_path / "before"
    write_result_dir(before)
    cells = gpd.read_file(before / "hotspots.gpkg", layer="observed_density")
    for column in ("rate", "rate_lo", "rate_hi"):
        cells[column] = cells[column] * np.where(np.arange(len(cells)) % 2 == 0, 4.0, 1.0)
    cells.to_file(before / "hotspots.gpkg", layer="observed_density", driver="GPKG", engine="pyogrio")
    page = render_map(result_dir, tmp_path / "change.html", before=before)
    decoded = unescape_js(page.read_text(encoding="utf-8"))
    assert render.LAYER_CHANGE in decoded
    verdicts = json.loads(re.search(r'"verdict": (\[[^\]]*\])', decoded).group(1))  # type: ignore[union-attr]
    surveyed = int(cells["surveyed"].sum())
    assert len(verdicts) == surveyed
    assert "less litter" in verdicts
    assert "no clear change" in verdicts
    assert "more litter" not in verdicts
    assert "2024-05-01 to 2024-05-02" in decoded  # the surveys' dates label the popup rows


def test_large_rasters_are_read_decimated(
    result_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rasterimg, "MAX_IMAGE_PIXELS", 20)
    small = render_map(result_dir, tmp_path / "small.html").stat().st_size
    monkeypatch.setattr(rasterimg, "MAX_IMAGE_PIXELS", 1600)
    full = render_map(result_dir, tmp_path / "full.html").stat().st_size
    assert small < full
    assert render.LAYER_BASEMAP in (tmp_path / "small.html").read_text(encoding="utf-8")


def test_existing_map_is_replaced(result_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    out.write_text("old", encoding="utf-8")
    render_map(result_dir, out)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.html"]


def test_hillshade_lights_the_north_west() -> None:
    rows, cols = np.mgrid[0:20, 0:20].astype(np.float64)
    facing_nw = 10.0 * (rows + cols)  # rises to the south-east: its slope faces north-west
    facing_se = -facing_nw
    flat = np.zeros((20, 20))
    nw = hillshade(facing_nw, 100.0, 100.0)
    se = hillshade(facing_se, 100.0, 100.0)
    assert np.allclose(hillshade(flat, 100.0, 100.0), math.sin(math.radians(45.0)))
    assert nw.mean() > 0.75
    assert se.mean() < 0.65
    assert np.all((nw >= 0) & (nw <= 1))
    with_hole = facing_nw.copy()
    with_hole[3, 4] = np.nan
    shade = hillshade(with_hole, 100.0, 100.0)
    assert np.isnan(shade[3, 4])
    assert np.isfinite(shade[3, 5])


def require_chromium() -> None:
    """Skip without Chromium, except under CI (``CI=true``), where its absence is a failure."""
    if not chromium_available():
        if in_ci():
            pytest.fail("CI=true but Chromium is missing: install it with `apt-get install chromium`")
        pytest.skip("Chromium not installed (apt-get install chromium)")


OPEN_POPUPS = """
(() => {
  const map = Object.keys(window).map(k => window[k]).find(v => v instanceof L.Map);
  let opened = 0;
  map.eachLayer(layer => {
    const popup = layer.getPopup && layer.getPopup();
    let content = popup ? popup.getContent() : "";
    if (typeof content === "function") { content = content(layer); }
    content = String(content);
    if (content.includes("alert")) {
      popup.options.autoClose = false;
      layer.openPopup();
      opened += 1;
    }
  });
  return opened;
})()
"""


@pytest.fixture(scope="module")
def browser_run(page: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], str, Path]:
    require_chromium()
    shot = tmp_path_factory.mktemp("browser") / "map.png"
    errors, dom = run_headless(page, shot, script=OPEN_POPUPS)
    return errors, dom, shot


def test_map_runs_offline_in_a_browser(browser_run: tuple[list[str], str, Path]) -> None:
    errors, dom, _ = browser_run
    assert errors == []
    assert not any("Uncaught" in e or "is not defined" in e for e in errors)
    assert "leaflet-container" in dom
    assert "leaflet-control-layers" in dom
    for name in EXPECTED_NAMES:
        assert html.escape(name) in dom, name
    assert "Legend" in dom
    assert "0.1.0-test" in dom


def test_browser_shows_hostile_text_as_text(browser_run: tuple[list[str], str, Path]) -> None:
    _, dom, _ = browser_run
    popups = re.findall(r'<div class="leaflet-popup-content"[^>]*>(.*?)</div>', dom, re.DOTALL)
    assert len(popups) == 2, popups  # the barrier and the leakage hotspot with a hostile driver
    joined = "".join(popups)
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in joined
    assert "&lt;img src=x onerror=alert(2)&gt;" in joined
    assert "<script>alert(" not in dom
    assert "<img src=" not in dom


def test_screenshot_is_not_blank(browser_run: tuple[list[str], str, Path]) -> None:
    from matplotlib import image as mpimage

    _, _, shot = browser_run
    pixels = mpimage.imread(shot)
    assert pixels.shape[:2] == (860, 1280)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 5
    # The offline basemap is drawn: the map's middle is not Leaflet's empty grey background.
    middle = (pixels[300:560, 400:800, :3] * 255).astype(np.uint8).reshape(-1, 3)
    grey = np.all(np.abs(middle.astype(int) - 221) <= 2, axis=1)
    assert grey.mean() < 0.2


def test_browser_helper_reports_errors_and_network_requests(tmp_path: Path) -> None:
    require_chromium()
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<html><head><script src="https://cdn.example.invalid/leaflet.js"></script></head>'
        "<body><p>x</p><script>L.map('x');</script></body></html>",
        encoding="utf-8",
    )
    errors, dom = run_headless(bad, tmp_path / "bad.png", settle_s=0.2)
    assert any("network request" in e and "cdn.example.invalid" in e for e in errors), errors
    assert any("Uncaught" in e and "L is not defined" in e for e in errors), errors
    assert "<p>x</p>" in dom


PROBE = """
(async () => {
  const wait = ms => new Promise(resolve => setTimeout(resolve, ms));
  const map = Object.keys(window).map(k => window[k]).find(v => v instanceof L.Map);
  const out = {};
  const click = async latlng => {
    map.closePopup();
    map.setView(latlng, 17, {animate: false});
    await wait(400);
    const point = map.latLngToContainerPoint(latlng);
    const rect = map.getContainer().getBoundingClientRect();
    const x = rect.left + point.x, y = rect.top + point.y;
    const target = document.elementFromPoint(x, y);
    for (const type of ["mousedown", "mouseup", "click"]) {
      target.dispatchEvent(new MouseEvent(type, {bubbles: true, cancelable: true, clientX: x, clientY: y}));
    }
    await wait(400);
    const popup = document.querySelector(".leaflet-popup-content");
    return popup ? popup.innerHTML : "";
  };
  const photos = ph.layers.find(entry => entry.marks);
  const thumbAt = Number(Object.keys(photos.d.thumbs)[0]);
  const photoPopup = await click(photos.marks[thumbAt].getLatLng());
  out.photoPopup = photoPopup.includes("Survey photo");
  const img = document.querySelector(".leaflet-popup-content img.ph-thumb");
  out.thumbWidth = img ? img.naturalWidth : 0;
  // A surveyed density cell that no Gi* cell covers, and one that a Gi* hot spot covers.
  const cells = ph.layers.find(entry => entry.shapes && entry.d.cols.modelled);
  const centres = cells.shapes.map(shape => shape.getBounds().getCenter());
  const plain = centres.find((c, i) => cells.d.cols.rate[i] !== null && ph.hitTest(map, c).layer === cells);
  const hot = centres.find(c => ph.hitTest(map, c).layer !== cells);
  out.cellPopup = (await click(plain)).includes("Observed litter density");
  out.hotPopup = (await click(hot)).includes("Getis-Ord Gi*");
  const box = document.getElementById("ph-filter");
  out.countAll = box.querySelector(".ph-filter-count").textContent;
  box.querySelector("[name=from]").value = "2024-05-02";
  ph.applyFilters();
  out.countLaterDay = box.querySelector(".ph-filter-count").textContent;
  box.querySelector("[name=cls]").value = "bottle";
  ph.applyFilters();
  out.redWithBottle = photos.group.getLayers().filter(m => m.options.fillColor === "#d7301f").length;
  const labels = document.querySelectorAll(".leaflet-control-layers label span");
  out.control = [...labels].map(s => s.textContent.trim());
  const pre = document.createElement("pre");
  pre.id = "ph-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})()
"""


def test_browser_clicks_filters_and_layers(page: Path, tmp_path: Path) -> None:
    """Real clicks open popups (a photo with its thumbnail, a density cell); filters change what is shown."""
    require_chromium()
    errors, dom = run_headless(page, tmp_path / "probe.png", script=PROBE)
    assert errors == []
    found = re.search(r'<pre id="ph-probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-2000:]
    probe = json.loads(html.unescape(found.group(1)))
    assert probe["photoPopup"] is True
    assert probe["thumbWidth"] == 320  # the thumbnail decoded as an image
    assert probe["cellPopup"] is True
    assert probe["hotPopup"] is True
    assert probe["countAll"] == "25 of 25 photos"
    assert probe["countLaterDay"] == "12 of 25 photos"  # the fixture alternates 1 and 2 May
    assert 0 < probe["redWithBottle"] < 12
    for name in (*EXPECTED_NAMES, render.LAYER_GI):
        assert name in probe["control"], name


def test_many_density_cells_are_merged_into_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import geopandas as gpd

    result = write_result_dir(tmp_path / "r", layers=("basin", "observed_density"))
    cells = gpd.read_file(result / "hotspots.gpkg", layer="observed_density")
    merged, factor = maplayers.coarsen_cells(cells, 4)
    assert len(merged) <= 4 < len(cells)
    assert merged["observations"].sum() == cells["observations"].sum()  # every cell counted
    assert merged["items"].sum() == cells["items"].sum()
    keys = (cells["row"] // factor) * 10_000_019 + (cells["col"] // factor)
    first = cells[keys == keys.iloc[0]]
    members = first[first["surveyed"]]
    expected = (members["rate"] * members["observations"]).sum() / members["observations"].sum()
    block = merged[merged.geometry.contains(first.geometry.iloc[0].centroid)]
    assert block["rate"].iloc[0] == pytest.approx(expected)
    assert not {"_weighted", "_surveyed_obs"} & set(merged.columns)
    monkeypatch.setattr(maplayers, "MAX_DENSITY_CELLS", 4)
    text = unescape_js(render_map(result, tmp_path / "map.html").read_text(encoding="utf-8"))
    assert f"12 cells shown as {len(merged)} blocks of {factor} x {factor} cells" in text
