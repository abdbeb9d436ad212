"""`jsonio.json_safe`, the one conversion of what Bondscope writes as JSON (CLI `--json`, runs)."""

import json
import math

import numpy as np
from bondscope.jsonio import json_safe


def test_every_non_finite_number_becomes_null_at_any_depth():
    value = {
        "r": float("nan"),
        "rows": [[1.0, float("inf")], (float("-inf"), 2)],
        "numpy": {
            "nan32": np.float32("nan"),
            "inf64": np.float64("inf"),
            "minus_inf": np.float64("-inf"),
            "half": np.float32(0.5),
            "count": np.int64(3),
            "flag": np.bool_(True),
            "matrix": np.array([[0.25, np.nan], [np.inf, 1.0]]),
        },
        "kept": ["text", None, True, 0, -1.5],
    }
    assert json_safe(value) == {
        "r": None,
        "rows": [[1.0, None], [None, 2]],
        "numpy": {
            "nan32": None,
            "inf64": None,
            "minus_inf": None,
            "half": 0.5,
            "count": 3,
            "flag": True,
            "matrix": [[0.25, None], [None, 1.0]],
        },
        "kept": ["text", None, True, 0, -1.5],
    }
    text = json.dumps(json_safe(value), allow_nan=False)  # strict JSON: no NaN, no Infinity
    assert "NaN" not in text and "Infinity" not in text


def test_values_come_back_as_plain_python_types():
    converted = json_safe({"x": np.float64(2.0), "n": np.int32(7), "t": (np.float32(1.5),)})
    assert type(converted["x"]) is float and type(converted["n"]) is int
    assert converted["t"] == [1.5] and isinstance(converted["t"], list)
    assert math.isclose(converted["x"], 2.0)
