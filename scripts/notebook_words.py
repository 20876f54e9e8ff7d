"""Markdown words and code-cell lengths of each notebook, against the budgets of STYLE.md.

    python scripts/notebook_words.py            # a table; exit status 1 when a budget is broken
"""
import json
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
WORD_BUDGET = {"01": 4500, "02": 4500, "03": 4000, "04": 3000}  # markdown words per notebook
CODE_LINES = 25  # the longest a code cell may be


def measure(path):
    """(markdown words, [(cell index, lines) of each code cell over CODE_LINES])."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    words = sum(len("".join(cell["source"]).split()) for cell in cells if cell["cell_type"] == "markdown")
    long_cells = [(index, len("".join(cell["source"]).splitlines())) for index, cell in enumerate(cells)
                  if cell["cell_type"] == "code" and len("".join(cell["source"]).splitlines()) > CODE_LINES]
    return words, long_cells


def main():
    broken = False
    for path in sorted(NOTEBOOKS.glob("[0-9]*.ipynb")):
        words, long_cells = measure(path)
        budget = WORD_BUDGET.get(path.name[:2])
        over = budget is not None and words > budget
        broken |= over or bool(long_cells)
        print(f"{path.name:45} {words:>6,} words (budget {budget:,}){'  OVER' if over else ''}"
              + (f"; code cells over {CODE_LINES} lines: {long_cells}" if long_cells else ""))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
