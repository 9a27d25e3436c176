"""The published DARTS_V2 cell checked against the reference implementation's numbers, and the DARTS text form."""
from pathlib import Path

import pytest

from nas_core.space import (Genotype, SpaceConfig, build_network, count_parameters, format_darts_genotype,
                            load_genotype, parse_darts_genotype)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "genotypes" / "DARTS_V2.txt"


def test_darts_v2_has_the_reference_parameter_count():
    g = load_genotype(EXAMPLE)
    space = SpaceConfig(macro="darts-classifier", channels=36, layers=20, num_classes=10)
    net = build_network(g, space, auxiliary=True)
    assert count_parameters(net) == 3_349_342
    # The auxiliary head adds parameters that DARTS leaves out of its count.
    assert count_parameters(net, include_auxiliary=True) > 3_349_342
    assert count_parameters(build_network(g, space, auxiliary=False)) == 3_349_342


def test_darts_text_round_trip_and_range_concat():
    text = EXAMPLE.read_text()
    g = parse_darts_genotype(text)
    assert g.cells["normal"].nodes[3] == (("skip_connect", 0), ("dil_conv_3x3", 2))
    again = parse_darts_genotype(format_darts_genotype(g))
    assert again == g
    ranged = parse_darts_genotype("DARTS_V2 = " + text.replace("[2, 3, 4, 5]", "range(2, 6)"))
    assert ranged == g and ranged.hash() == g.hash()


def test_a_whole_genotypes_file_needs_a_name():
    text = f"from collections import namedtuple\nA = {EXAMPLE.read_text()}\nB = {EXAMPLE.read_text()}"
    with pytest.raises(ValueError, match="several genotypes"):
        parse_darts_genotype(text)
    assert parse_darts_genotype(text, name="B") == parse_darts_genotype(EXAMPLE.read_text())


@pytest.mark.parametrize("evil", [
    "Genotype(normal=__import__('os').system('touch /tmp/pwned'), normal_concat=[2], reduce=[], reduce_concat=[2])",
    "Genotype(normal=[('sep_conv_3x3', 0)] * 8, normal_concat=[2, 3, 4, 5], reduce=[], reduce_concat=[2])",
    "Genotype(normal=[(open('/etc/passwd').read(), 0)], normal_concat=[2], reduce=[], reduce_concat=[2])",
])
def test_parsing_never_evaluates(evil, tmp_path):
    with pytest.raises(ValueError, match="only lists"):
        parse_darts_genotype(evil)


def test_json_form_and_hash():
    g = load_genotype(EXAMPLE)
    d = g.to_dict()
    assert Genotype.from_dict(d) == g
    swapped = Genotype.from_dict({"cells": {t: {"nodes": [list(reversed(n)) for n in c["nodes"]], "concat": c["concat"]}
                                            for t, c in d["cells"].items()}})
    assert swapped != g and swapped.hash() == g.hash()  # a node is a sum: order does not matter for dedup
    other = Genotype.from_dict({"cells": {**d["cells"], "normal": {**d["cells"]["normal"], "concat": [2, 3, 4]}}})
    assert other.hash() != g.hash()
    with pytest.raises(ValueError, match=r"cells.normal.nodes\[0\]"):
        Genotype.from_dict({"cells": {"normal": {"nodes": [[["sep_conv_3x3", "x"]]]}}})
