"""What `dvc plots show` draws with: the Vega-Lite templates in `.dvc/plots/` and an offline HTML page.

The templates give every language the colour `lidr.plots.LANGUAGE_COLOURS` gives it in the PNGs (one
colour per language in every plot), leave out the pooled "all" series, draw the 95% interval as a band
where the CSV has one (`low`, `high`), and title the y axis with the plot's `y_label` from `dvc.yaml`.

DVC's default HTML page loads Vega from a CDN, so it is blank without a network. The page written here
holds the Vega, Vega-Lite and Vega-Embed libraries inline (from the `vl-convert-python` package, which
bundles them), and `.dvc/config` points `plots.html_template` at it. `make setup` writes it (it is large
and generated, so git ignores it):

    python -m lidr.plot_templates --page .dvc/plots/offline.html   # the offline page
    python -m lidr.plot_templates --templates .dvc/plots           # the templates (committed; a test compares)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lidr.io import atomic_path
from lidr.plots import LANGUAGE_COLOURS

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
DVC_PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")
VEGA_LITE = "5.21"  # the major version of the templates' $schema


def _number(field: str) -> str:
    """A Vega expression: the CSV field as a number, or null where the cell is empty."""
    return f"datum['{field}'] === '' || datum['{field}'] == null ? null : toNumber(datum['{field}'])"


# what every template shares: DVC's anchors for the data and the title, and the size
FRAME = {
    "$schema": SCHEMA,
    "data": {"values": "<DVC_METRIC_DATA>"},
    "title": "<DVC_METRIC_TITLE>",
    "width": 360,
    "height": 220,
}

# the colour comes from the data (the "colour" field), so the legend lists only the languages present
LANGUAGE = {
    "field": "lang",
    "type": "nominal",
    "title": "language",
    "scale": {"range": {"field": "colour"}},
    "legend": {"symbolOpacity": 1, "symbolFillOpacity": 1, "symbolType": "circle"},
}


def iterations_template() -> dict:
    """Models on the x axis in iteration order, one line per language, its 95% interval as a band."""
    colours = json.dumps(LANGUAGE_COLOURS, sort_keys=True)
    y_title = "<DVC_METRIC_Y_LABEL>"
    return {
        **FRAME,
        "transform": [
            {"filter": "datum.lang !== 'all'"},  # the pooled value is in metrics/report.md, not a language
            {"calculate": f"{colours}[datum.lang] || '#000000'", "as": "colour"},
            {"calculate": _number("<DVC_METRIC_Y>"), "as": "y"},
            {"calculate": _number("low"), "as": "low95"},
            {"calculate": _number("high"), "as": "high95"},
        ],
        "encoding": {
            "x": {
                "field": "<DVC_METRIC_X>",
                "type": "ordinal",
                "sort": {"field": "iteration", "op": "min"},
                "title": "model (iteration)",
                "axis": {"labelAngle": 0},
            },
        },
        "layer": [
            {
                "transform": [{"filter": "isValid(datum.low95) && isValid(datum.high95)"}],
                "mark": {"type": "area", "fillOpacity": 0.15},
                "encoding": {
                    "y": {"field": "low95", "type": "quantitative", "title": y_title, "scale": {"zero": False}},
                    "y2": {"field": "high95"},
                    "color": {"field": "colour", "type": "nominal", "scale": None},  # no legend of its own
                    "detail": {"field": "rev", "type": "nominal"},
                },
            },
            {
                "mark": {"type": "line", "point": True, "tooltip": True},
                "encoding": {
                    "y": {"field": "y", "type": "quantitative", "title": y_title, "scale": {"zero": False}},
                    "color": LANGUAGE,
                    "strokeDash": {"field": "rev", "type": "nominal", "title": "revision"},
                },
            },
        ],
    }


def curves_template() -> dict:
    """Training curves: the optimizer step on the x axis, one line per iteration."""
    return {
        **FRAME,
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "<DVC_METRIC_X>", "type": "quantitative", "title": "optimizer step"},
            "y": {
                "field": "<DVC_METRIC_Y>",
                "type": "quantitative",
                "title": "<DVC_METRIC_Y_LABEL>",
                "scale": {"zero": False},
            },
            "color": {"field": "model", "type": "nominal", "title": "iteration"},
            "strokeDash": {"field": "rev", "type": "nominal", "title": "revision"},
        },
    }


TEMPLATES = {"iterations": iterations_template, "curves": curves_template}


def template_text(name: str) -> str:
    return json.dumps(TEMPLATES[name](), indent=2) + "\n"


def offline_page() -> str:
    """DVC's page layout with the plotting libraries inline instead of from a CDN."""
    try:
        import vl_convert
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise SystemExit("the offline plots page needs vl-convert-python: pip install vl-convert-python") from e
    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE).replace("</script", "<\\/script")
    clash = [p for p in DVC_PLACEHOLDERS if p in bundle]
    if clash:  # DVC fills its placeholders by plain replacement anywhere in the page
        raise SystemExit(f"the Vega bundle contains DVC's placeholder {clash[0]}; the page would break")
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n{refresh_tag}\n<title>lidr plots</title>\n'
        f"<!-- Vega {vl_convert.get_vega_version()}, Vega-Lite {VEGA_LITE}, "
        f"Vega-Embed {vl_convert.get_vega_embed_version()} (BSD-3-Clause), bundled by vl-convert-python -->\n"
        f"<script>\n{bundle}\n</script>\n"
        "<style>body { font-family: sans-serif; } table { border-spacing: 15px; } img { max-width: 640px; }</style>\n"
        "</head>\n<body>\n{plot_divs}\n</body>\n</html>\n"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--page", type=Path, help="write the offline HTML page here")
    ap.add_argument("--templates", type=Path, help="write the Vega-Lite templates into this folder")
    args = ap.parse_args(argv)
    if args.page is None and args.templates is None:
        ap.error("nothing to write: give --page and/or --templates")
    if args.templates is not None:
        for name in TEMPLATES:
            with atomic_path(args.templates / f"{name}.json") as tmp:
                tmp.write_text(template_text(name), encoding="utf-8")
    if args.page is not None:
        with atomic_path(args.page) as tmp:
            tmp.write_text(offline_page(), encoding="utf-8")


if __name__ == "__main__":
    main()
