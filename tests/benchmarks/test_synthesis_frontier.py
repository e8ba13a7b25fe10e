"""``benchmarks/synthesis_frontier.py`` replaces an existing figure only with ``--force``."""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "synthesis_frontier.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_existing_figure_is_kept_without_force(tmp_path):
    figure = tmp_path / "mine.png"
    figure.write_bytes(b"the user's file")
    done = _run("--figure", str(figure))
    assert done.returncode == 2
    assert "pass --force" in done.stderr and "--figure" in done.stderr
    assert figure.read_bytes() == b"the user's file"
    done = _run("--figure", str(figure), "--force")
    assert done.returncode == 0, done.stderr
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
