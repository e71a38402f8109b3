"""`dvc plots show`: offline, one colour per language, intervals as bands, y titles that name the measure."""

import configparser
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from lidr import plot_templates
from lidr.languages import LANGUAGE_NAMES
from lidr.plots import LANGUAGE_COLOURS, colour
from tests.conftest import ROOT

vl_convert = pytest.importorskip("vl_convert")


def test_every_language_has_its_own_colour():
    assert set(LANGUAGE_COLOURS) == set(LANGUAGE_NAMES)
    assert len(set(LANGUAGE_COLOURS.values())) == len(LANGUAGE_COLOURS)
    assert colour("fr") == LANGUAGE_COLOURS["fr"] and colour("xx") == "#000000"


@pytest.mark.parametrize("name", sorted(plot_templates.TEMPLATES))
def test_the_committed_templates_are_the_generated_ones(name):
    committed = (ROOT / ".dvc" / "plots" / f"{name}.json").read_text(encoding="utf-8")
    assert committed == plot_templates.template_text(name), "run: python -m lidr.plot_templates --templates .dvc/plots"


def fill(template: str, rows: list[dict], y_label: str) -> dict:
    """The template with DVC's anchors filled as `dvc plots show` fills them."""
    text = template.replace('"<DVC_METRIC_DATA>"', json.dumps(rows))
    for anchor, value in {"TITLE": "a measure", "X": "model", "Y": "value", "Y_LABEL": y_label}.items():
        text = text.replace(f"<DVC_METRIC_{anchor}>", value)
    return json.loads(text)


def test_the_iterations_template_draws_languages_in_their_colours_with_bands_and_no_pooled_series():
    rows = []
    for i, model in enumerate(["m0", "general-m1"]):
        for lang, value in [("all", 0.5), ("de", 0.8), ("ru", 0.9)]:
            rows.append(
                {"iteration": str(i), "model": model, "lang": lang, "value": str(value + i / 100),
                 "low": str(value - 0.05), "high": str(value + 0.05), "rev": "workspace"}
            )  # fmt: skip
    rows.append({"iteration": "1", "model": "general-m1", "lang": "fr", "value": "0.7", "low": "", "high": ""})
    spec = fill(plot_templates.template_text("iterations"), rows, "share of answers")
    svg = vl_convert.vegalite_to_svg(spec, vl_version=plot_templates.VEGA_LITE)
    for lang in ("de", "ru", "fr"):
        assert LANGUAGE_COLOURS[lang] in svg
        assert f">{lang}</text>" in svg
    assert ">all</text>" not in svg  # the pooled value is not drawn as a language
    assert "share of answers" in svg  # the y title names the measure
    # two bands (de, ru: fr has no interval), drawn as translucent areas
    assert len(re.findall(r'fill-opacity="0.15"', svg)) == 2


def test_the_page_holds_the_libraries_inline():
    page = plot_templates.offline_page()
    for placeholder in plot_templates.DVC_PLACEHOLDERS:
        assert page.count(placeholder) == (0 if placeholder == "{scripts}" else 1)
    assert "window.vegaEmbed" in page
    assert not re.search(r"<script[^>]+src=", page)


def test_dvc_config_points_at_the_page_that_setup_writes():
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert config["plots"]["html_template"] == "plots/offline.html"
    assert "lidr.plot_templates --page .dvc/plots/offline.html" in (ROOT / "Makefile").read_text()
    assert ".dvc/plots/offline.html" in (ROOT / ".gitignore").read_text().splitlines()


def test_every_data_plot_titles_its_y_axis_and_the_pictures_are_image_plots():
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    data = [next(iter(p.values())) for p in plots if isinstance(p, dict)]
    images = [p for p in plots if isinstance(p, str)]
    assert data and all(d.get("y_label") for d in data)
    assert images and all(p.endswith(".png") for p in images)


@pytest.mark.slow
def test_dvc_plots_show_writes_a_page_that_needs_no_network(tmp_path):
    page = tmp_path / "page.html"
    plot_templates.main(["--page", str(page)])
    out = tmp_path / "out"
    dvc = [sys.executable, "-m", "dvc", "plots", "show", "-o", str(out), "--html-template", str(page)]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(dvc, cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    html = (out / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", html)  # nothing loaded from a CDN
    assert html.count("vegaEmbed('#") >= 4  # the measures across iterations and the training curves
    assert "<img" in html  # the report's PNGs
