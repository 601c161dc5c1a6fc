"""The training package sits above the models: nothing under ``physguard.models`` imports it at
import time, every loop is served from ``physguard.training``, and the old import paths still
resolve to the same objects."""

import ast
from pathlib import Path

import physguard


def _module_level_imports(path: Path) -> list[str]:
    """The physguard modules a file imports at module level (relative imports resolved)."""
    package = path.relative_to(Path(physguard.__file__).parent.parent).with_suffix("").parts
    names = []
    for node in ast.parse(path.read_text()).body:  # module level only: lazy imports allowed
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level])
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module or "")
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def test_models_never_import_training_at_module_level():
    models = Path(physguard.__file__).with_name("models")
    for path in sorted(models.glob("*.py")):
        for name in _module_level_imports(path):
            assert not name.startswith("physguard.training"), f"{path.name} imports {name}"


def test_training_imports_no_experiment_or_blackbox():
    training = Path(physguard.__file__).with_name("training")
    for path in sorted(training.glob("*.py")):
        for name in _module_level_imports(path):
            assert not name.startswith(("physguard.experiments", "physguard.blackbox",
                                        "physguard.cli")), f"{path.name} imports {name}"


def test_old_import_paths_give_the_same_objects():
    from physguard import training
    from physguard.models import NPData, train_anp
    from physguard.models.training import load_checkpoint

    assert train_anp is training.train_anp and NPData is training.NPData
    assert load_checkpoint is training.load_checkpoint
    assert callable(training.fit_operator) and callable(training.relative_l2_loss)
