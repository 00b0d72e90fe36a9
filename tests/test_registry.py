"""The registries every extension point uses."""

import pytest

from slcbench.errors import SlcbenchError
from slcbench.formats import OUTPUT_FORMATS, Output, OutputFormat
from slcbench.io import write_outputs
from slcbench.registry import Registry


def test_entries_keep_their_order_names_are_taken_once_and_unknown_ones_list_the_choices():
    colours = Registry[str]("colour")
    colours.register("red", "#f00")
    colours.add("blue")("#00f")
    assert colours.names() == ("red", "blue") and colours["blue"] == "#00f" and "red" in colours
    with pytest.raises(ValueError, match="already registered"):
        colours.register("red", "#e00")
    with pytest.raises(SlcbenchError, match="unknown colour 'green'; choose from: red, blue"):
        colours.get("green")
    assert colours.unregister("red") == "#f00" and colours.names() == ("blue",)


def test_a_registered_output_format_is_written_like_the_built_in_ones(tmp_path):
    OUTPUT_FORMATS.register("shout", OutputFormat(".txt", "text, upper case", lambda text: text.upper().encode()))
    try:
        (path,) = write_outputs([Output(tmp_path / "a.txt", "shout", "slc")])
        assert path.read_text() == "SLC"
    finally:
        OUTPUT_FORMATS.unregister("shout")
