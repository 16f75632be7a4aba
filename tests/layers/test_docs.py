"""The examples in docs/layers.md run as written."""

import os
import re

import pytest

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "layers.md")
with open(DOC, encoding="utf-8") as handle:
    EXAMPLES = re.findall(r"```python\n(.*?)```", handle.read(), flags=re.S)


def test_doc_has_examples():
    assert len(EXAMPLES) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs(index):
    exec(compile(EXAMPLES[index], f"docs/layers.md example {index}", "exec"), {})
