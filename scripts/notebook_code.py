"""Load the functions and classes a notebook defines, so tests exercise the notebook's own code.

Runs the notebook's imports, its parameters cell and every top-level `def`, `class` and
UPPER_CASE constant (plus any names listed in `also`), skipping the cells that train or plot.
"""
import ast
import json
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_namespace(file_name, also=(), **given):
    """A dict holding the notebook's definitions; `given` names are set before anything runs."""
    cells = json.loads((NOTEBOOKS / file_name).read_text())["cells"]
    namespace = {"__name__": f"notebook_{Path(file_name).stem}", **given}
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(line for line in cell["source"] if not line.lstrip().startswith(("%", "!")))
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            exec(compile(source, file_name, "exec"), namespace)
            namespace.update(given)  # a test's choices win over the notebook's defaults
            continue
        kept = [node for node in ast.parse(source).body if _is_definition(node, also)]
        exec(compile(ast.Module(body=kept, type_ignores=[]), file_name, "exec"), namespace)
        namespace.update(given)
    return namespace


def _is_definition(node, also):
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Assign):
        names = [target.id for target in node.targets if isinstance(target, ast.Name)]
        return len(names) == len(node.targets) and all(n.isupper() or n in also for n in names)
    return False
