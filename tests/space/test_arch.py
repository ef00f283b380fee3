import json

import numpy as np
import pytest

from linas import ConfigError
from linas.space import (
    CHOICE_KEYS,
    Arch,
    SearchSpace,
    choice_index,
    choices_to_ids,
    ids_to_choices,
    parse_choice,
)

EXAMPLE = "Conv3x3_w50-DWSep5x5_w100-EdgeConv_w75-Conv3x3_w100-DilatedDWSep_w50"


def test_space_size_is_21_to_the_5():
    assert SearchSpace().size == 4_084_101
    assert len(CHOICE_KEYS) == 21


def test_canonical_string_round_trip():
    arch = Arch.parse(EXAMPLE)
    assert str(arch) == EXAMPLE
    assert arch.op(1) == "DWSep5x5" and arch.width(2) == 0.75
    assert Arch.from_json(json.loads(json.dumps(arch.to_json()))) == arch
    assert Arch.from_json(EXAMPLE) == arch
    assert Arch.from_index(arch.index) == arch


def test_ids_vectorised_match_scalar():
    space = SearchSpace()
    archs = space.sample(50, seed=3)
    choices = np.array([a.choices for a in archs])
    ids = choices_to_ids(choices)
    assert [a.index for a in archs] == ids.tolist()
    assert (ids_to_choices(ids) == choices).all()


def test_all_choices_enumerates_in_id_order():
    allc = SearchSpace().all_choices()
    assert allc.shape == (4_084_101, 5)
    for i in (0, 1, 21, 12345, 4_084_100):
        assert tuple(allc[i]) == Arch.from_index(i).choices


def test_sampling_is_seeded():
    space = SearchSpace()
    assert space.sample(10, seed=1) == space.sample(10, seed=1)
    assert space.sample(10, seed=1) != space.sample(10, seed=2)
    uniq = space.sample_unique(200, seed=0)
    assert len(set(uniq)) == 200


@pytest.mark.parametrize("text,fragment", [
    ("Conv3x3_w50-DWSep5x5_w100", "has 2 parts"),
    (EXAMPLE.replace("EdgeConv", "EdgeConvX"), "EdgeConv"),
    (EXAMPLE.replace("w75", "w60"), "width tag 'w60'"),
])
def test_invalid_strings_fail_clearly(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Arch.parse(text)


def test_unknown_op_lists_menu_and_closest():
    with pytest.raises(ConfigError) as err:
        choice_index("Conv3x4", 0.5)
    assert "did you mean 'Conv3x3'" in str(err.value) and "DilatedDWSep" in str(err.value)
    with pytest.raises(ConfigError, match="valid widths"):
        choice_index("Conv3x3", 0.6)
    with pytest.raises(ConfigError):
        Arch((0, 1, 2, 3))
    with pytest.raises(ConfigError):
        Arch((0, 1, 2, 3, 21))
    assert parse_choice("DilatedDWSep_w100") == ("DilatedDWSep", 1.0)
