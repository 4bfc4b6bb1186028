"""The collection's layout rules, read from the source (nothing is imported or run):

* a folder refers to its own modules relatively (`from .model import ...`), never by its
  folder's name, and never imports another paper's folder: a copy under a new name runs its
  own files (tests/test_template.py runs such copies);
* scripts (train.py, generate.py, evaluate.py, anything with a `__main__` block) are entry
  points: no module imports a script; what two scripts share lives in utils.py or model.py;
* no import cycles, inside a folder or inside common/ (imports inside functions count too:
  a cycle hidden in a function is still a cycle);
* common/ imports no paper folder.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

FOLDERS = sorted(p.parent.name for p in ROOT.glob("*/train.py"))
SCRIPT_NAMES = {"train", "generate", "evaluate"}


def test_the_twelve_folders_are_found():
    assert len(FOLDERS) == 12, FOLDERS
    assert "common" not in FOLDERS and "dcgan" in FOLDERS


def modules(package: Path) -> dict[str, ast.Module]:
    return {f.stem: ast.parse(f.read_text(), str(f)) for f in sorted(package.glob("*.py"))}


def is_script(name: str, tree: ast.Module) -> bool:
    """train/generate/evaluate, or any module with an `if __name__ == "__main__":` block."""
    if name in SCRIPT_NAMES:
        return True
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return True
    return False


def imports(tree: ast.Module, own: set[str]) -> tuple[set[str], list[str]]:
    """(modules of the same package this one imports, absolute imports of top-level names),
    from every import statement, at module level or inside a function."""
    local, absolute = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level > 1:
                absolute.append(f"{'.' * node.level}{node.module or ''} (reaches outside the folder)")
            elif node.module:
                local.add(node.module.split(".")[0])
            else:  # from . import a, b
                local.update(alias.name for alias in node.names if alias.name in own)
        elif isinstance(node, ast.ImportFrom):
            absolute.append(node.module)
        elif isinstance(node, ast.Import):
            absolute.extend(alias.name for alias in node.names)
    return local, absolute


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle's path, found by depth-first search (an edge back to a module on the stack)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def package_report(package: Path, forbidden_tops: set[str]) -> list[str]:
    """Every broken rule of one package, one line each."""
    trees = modules(package)
    own = set(trees)
    problems, graph = [], {}
    for name, tree in trees.items():
        local, absolute = imports(tree, own)
        graph[name] = {m for m in local if m in own}
        for m in sorted(local - own):
            problems.append(f"{package.name}/{name}.py imports .{m}, which is not in the folder")
        for m in sorted(graph[name]):
            if is_script(m, trees[m]):
                problems.append(f"{package.name}/{name}.py imports the script {m}.py")
        for target in absolute:
            top = (target or "").split(".")[0]
            if top in forbidden_tops or target.startswith("."):
                problems.append(f"{package.name}/{name}.py imports {target} by name")
    for cycle in cycles(graph):
        problems.append(f"{package.name}: import cycle {' -> '.join(cycle)}")
    return problems


@pytest.mark.parametrize("folder", FOLDERS)
def test_folder_imports_only_itself_and_common(folder):
    """Relative imports inside the folder, no other folder, no script imported, no cycle."""
    assert package_report(ROOT / folder, forbidden_tops=set(FOLDERS)) == []


def test_common_imports_no_folder_and_has_no_cycle():
    assert package_report(ROOT / "common", forbidden_tops=set(FOLDERS)) == []


# ------------------------------------------------------------------ the checker itself
def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    return folder


def test_checker_finds_a_script_import_a_cycle_and_a_folder_import(tmp_path):
    """The rules fire on a package that breaks each of them (a check that cannot fail is no check)."""
    pkg = write(tmp_path / "gan", {
        "__init__": "",
        "model": "from .utils import helper\n",
        "utils": "def helper():\n    from .model import X\n",  # a cycle hidden in a function
        "train": "from .model import X\nif __name__ == '__main__':\n    pass\n",
        "evaluate": "from .train import X\nfrom dcgan.model import G\n",
        "tool": "from . import train\nif __name__ == '__main__':\n    pass\n",
    })
    problems = package_report(pkg, forbidden_tops={"dcgan"})
    assert "gan/evaluate.py imports the script train.py" in problems
    assert "gan/tool.py imports the script train.py" in problems
    assert "gan/evaluate.py imports dcgan.model by name" in problems
    assert any(p.startswith("gan: import cycle model -> utils -> model") for p in problems), problems
    assert len(problems) == 4, problems


def test_checker_passes_a_clean_package(tmp_path):
    pkg = write(tmp_path / "gan", {
        "__init__": "", "model": "import torch\n", "utils": "from .model import X\n",
        "train": "from . import model, utils\nfrom common.loop import setup\n",
        "generate": "from .utils import Y\n",
    })
    assert package_report(pkg, forbidden_tops={"dcgan"}) == []
