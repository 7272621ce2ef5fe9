"""The server-drawn SVG charts: well-formed, accessible (title, desc, text on every bar and point, a
labelled dashed target) and escaping every piece of text."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ipoa.web.charts import axis_max, bar_chart, line_chart, nice_max

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything not well-formed


def texts(root: ET.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text")]


def test_bar_chart_is_an_image_with_title_and_description():
    root = parse(bar_chart("calls", "Calls logged per day", "12 calls in all.", ["1 Nov", "2 Nov"], [5, 7]))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-labelledby") == "calls-title calls-desc"
    assert root.find(f"{SVG}title").text == "Calls logged per day"
    assert root.find(f"{SVG}title").get("id") == "calls-title"
    assert root.find(f"{SVG}desc").text == "12 calls in all."
    assert len(root.findall(f".//{SVG}rect")) == 2


def test_bar_chart_writes_each_value_and_label_as_text():
    root = parse(bar_chart("c", "T", "D", ["Mon", "Tue", "Wed"], [0, 3, 10]))
    words = texts(root)
    for needed in ("Mon", "Tue", "Wed", "0", "3", "10"):
        assert needed in words
    # Each bar also has its own tooltip title naming the label and the value.
    assert [t.text for t in root.findall(f".//{SVG}g/{SVG}title")] == ["Mon: 0", "Tue: 3", "Wed: 10"]


def test_bar_heights_are_in_proportion():
    root = parse(bar_chart("c", "T", "D", ["a", "b"], [5, 10]))
    a, b = (float(r.get("height")) for r in root.iter(f"{SVG}rect"))
    assert b == pytest.approx(2 * a, rel=1e-2)


def test_bar_chart_with_no_data_says_so():
    root = parse(bar_chart("c", "T", "D", [], []))
    assert "No data for this period" in texts(root)


def test_many_bars_thin_out_the_labels_but_keep_every_bar():
    labels = [f"{d} Jan" for d in range(1, 32)] * 3
    root = parse(bar_chart("c", "T", "D", labels, list(range(len(labels)))))
    assert len(root.findall(f".//{SVG}rect")) == len(labels)
    assert len([t for t in root.iter(f"{SVG}text") if t.get("class") == "label"]) < len(labels)


def test_every_text_is_escaped():
    evil = '<script>alert("x")</script> & "quotes"'
    svg = bar_chart('id" onload="x', evil, evil, [evil], [1])
    assert "<script>" not in svg and 'onload="x"' not in svg
    root = parse(svg)
    assert root.find(f"{SVG}title").text == evil
    assert evil in texts(root)
    svg = line_chart("l", evil, evil, [evil], [50.0], target=90)
    assert "<script>" not in svg
    assert parse(svg).find(f"{SVG}desc").text == evil


def test_line_chart_marks_points_with_values_and_a_labelled_dashed_target():
    root = parse(line_chart("acc", "% accepted within SLA", "By day.", ["1 Nov", "2 Nov", "3 Nov"],
                            [90.0, None, 97.5], target=95))
    words = texts(root)
    assert "90%" in words and "97.5%" in words and "no data" in words and "Target 95%" in words
    target = [line for line in root.iter(f"{SVG}line") if line.get("class") == "target"]
    assert len(target) == 1 and target[0].get("stroke-dasharray")
    assert len(root.findall(f".//{SVG}circle")) == 2
    # A gap (None) breaks the line: no polyline joins a point to itself.
    assert root.findall(f".//{SVG}polyline") == []


def test_line_chart_joins_consecutive_points():
    root = parse(line_chart("l", "T", "D", ["a", "b", "c"], [10.0, 20.0, 30.0]))
    (poly,) = root.findall(f".//{SVG}polyline")
    assert len(poly.get("points").split()) == 3


def test_values_and_labels_must_match():
    with pytest.raises(ValueError):
        bar_chart("c", "T", "D", ["a"], [1, 2])
    with pytest.raises(ValueError):
        line_chart("c", "T", "D", ["a", "b"], [1.0])


@pytest.mark.parametrize("value,expected", [(0, 1), (0.7, 1), (1, 1), (3, 5), (7, 10), (12, 20), (21, 25),
                                            (240, 250), (1001, 2000)])
def test_nice_max(value, expected):
    assert nice_max(value) == expected


@pytest.mark.parametrize("value,whole,expected", [(6, True, 8), (2, True, 4), (0, True, 4), (1, True, 4),
                                                  (35, True, 40), (240, True, 400), (0.3, False, 0.4)])
def test_axis_max_has_four_round_steps(value, whole, expected):
    assert axis_max(value, whole) == pytest.approx(expected)


def test_count_axes_have_whole_number_ticks():
    root = parse(bar_chart("c", "T", "D", ["a", "b"], [6, 2]))
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks == ["0", "2", "4", "6", "8"]
