"""What StackStorm Exchange CI holds a pack to: every Python file compiles and passes flake8;
and the pack's own bar: the core, the actions and the sensors type-check (mypy, setup.cfg)."""
import subprocess
import sys

from st2_support import PACK_DIR

CODE = ["actions", "sensors", "sandbox", "tests", "bench", "runner"]


def test_flake8_is_clean():
    run = subprocess.run([sys.executable, "-m", "flake8"] + CODE, cwd=PACK_DIR,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_everything_compiles_and_no_shell_strings():
    run = subprocess.run([sys.executable, "-m", "compileall", "-q"] + CODE, cwd=PACK_DIR,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    grep = subprocess.run(["grep", "-rnE", r"shell\s*=\s*True|os\.system\(|os\.popen\(",
                           "--include=*.py", "actions", "sensors", "sandbox", "bench", "runner"],
                          cwd=PACK_DIR, capture_output=True, text=True)
    assert grep.stdout == "", "shell strings:\n" + grep.stdout


def test_mypy_is_clean():
    run = subprocess.run([sys.executable, "-m", "mypy"], cwd=PACK_DIR, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr
