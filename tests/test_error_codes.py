"""One table of every error code (``neural_format.error_codes``): the error constructors refuse a
code outside it, every code written in the source is in it, and every code in it is used."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from neural_format.clauses import CLAUSES
from neural_format.error_codes import BUILDER_CODES, CODES, CONVERSION_CODES, MODEL_CODES, SDK_CODES
from neural_format.errors import NeuralFormatError, SchemaError

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"^N[FBM]-(?:[A-Z]\d{3}|E-[A-Z]+)$")


def codes_in_source() -> dict[str, list[str]]:
    """Every string constant shaped like a code, in our three packages, with where it is."""
    found: dict[str, list[str]] = {}
    for package in ("neural_format", "neural_builders", "neural_models"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
                    found.setdefault(node.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_constructors_check_the_table():
    with pytest.raises(ValueError, match="neural_format.error_codes"):
        SchemaError("NF-Z999", "no such code")
    with pytest.raises(ValueError):
        NeuralFormatError(None, "a code is required")  # type: ignore[arg-type]
    assert SchemaError("NF-R001", "known").code == "NF-R001"
    assert NeuralFormatError("NF-E-IO", "known").code == "NF-E-IO"


def test_every_code_in_the_source_is_in_the_table():
    unknown = {code: where for code, where in codes_in_source().items() if code not in CODES}
    assert not unknown, unknown


def test_every_code_in_the_table_outside_the_clauses_is_used():
    used = codes_in_source()
    for table in (SDK_CODES, CONVERSION_CODES, BUILDER_CODES, MODEL_CODES):
        unused = [code for code in table if code not in used]
        assert not unused, unused
    assert set(CODES) == set(CLAUSES) | set(SDK_CODES) | set(CONVERSION_CODES) | set(BUILDER_CODES) | set(MODEL_CODES)


def test_the_builders_and_models_constants_are_the_table_s_codes():
    from neural_builders import errors as builder_errors
    from neural_models import errors as model_errors
    for module, table in ((builder_errors, BUILDER_CODES), (model_errors, MODEL_CODES)):
        constants = {value for name, value in vars(module).items() if name.isupper() and isinstance(value, str)
                     and CODE.match(value)}
        assert constants == set(table), module.__name__


def test_the_converter_docs_list_the_table_s_conversion_codes():
    documented = set(re.findall(r"^\| (NF-[UX]\d{3}) \|", (ROOT / "docs" / "convert.md").read_text(), re.M))
    assert documented == set(CONVERSION_CODES)
