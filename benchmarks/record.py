"""What the benchmarks that write ``benchmarks/results/*.json`` share: the commit the code came from, the command
line, Kendall's tau, a results file that is never replaced without ``--force``, writing the record, and one error
line (exit 2) for bad input, and a work folder that is only ever one the benchmark made."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def code_commit() -> str:
    """The commit the running code came from, ``-dirty`` when tracked files differ from it."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                      text=True).stdout.strip():
        commit += "-dirty"
    return commit


def command_line(script: str) -> str:
    """How this benchmark was started, e.g. ``python benchmarks/proxy_rank.py --run R``."""
    return " ".join(["python", f"benchmarks/{script}", *sys.argv[1:]])


def kendall_tau(a: list[float], b: list[float]) -> float | None:
    """Kendall's tau-b of two equally long lists; None with fewer than 2 items."""
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic) if len(a) >= 2 else None


def _fit_on_macs(macs: list[int], values: list[float], groups: list | None):
    """Least squares of ``values`` on log2 MACs and a constant (one per group when ``groups`` is given: networks of
    different prototypes). Returns (the coefficients, the design matrix, the values)."""
    import numpy as np

    log_macs = np.log2(np.asarray(macs, dtype=float))
    groups = [None] * len(macs) if groups is None else groups
    constants = [[float(g == key) for g in groups] for key in dict.fromkeys(groups)]
    design = np.vstack([log_macs, *constants]).T
    y = np.asarray(values, dtype=float)
    return np.linalg.lstsq(design, y, rcond=None)[0], design, y


def beyond_macs(macs: list[int], values: list[float], groups: list | None = None) -> list[float]:
    """What ``values`` say beyond MACs: their residuals once fitted (least squares) on log MACs and a constant
    (one per group, when given)."""
    coef, design, y = _fit_on_macs(macs, values, groups)
    return list(y - design @ coef)


def per_doubling(macs: list[int], values: list[float], groups: list | None = None) -> float:
    """How much ``values`` rise per doubling of MACs, in the same fit as :func:`beyond_macs`."""
    return float(_fit_on_macs(macs, values, groups)[0][0])


def check_results_path(path: str | Path, force: bool, option: str = "--results") -> Path:
    """Called before any work: an existing results file (given as ``option``) is replaced only with ``--force``."""
    from toolkit.errors import InvalidArgumentError

    path = Path(path)
    if path.exists() and not force:
        raise InvalidArgumentError(f"{str(path)!r} already exists; pass --force to replace it, or another {option}")
    return path


WORK_MARKER = ".ferminet-benchmark-work"


def claim_work_folder(path: str | Path, script: str) -> Path:
    """Called before any work: ``path`` becomes this script's work folder only if it is new, empty, or one this script
    made before (it holds the marker file naming the script), and only if it is the user's own: not a symbolic link,
    owned by the user and writable by no one else (the defaults lie under /tmp, where another local user could
    otherwise plant the folder and links in it). Any other folder is refused, never written to."""
    from toolkit.errors import InvalidArgumentError

    path = Path(path)
    if path.is_symlink():  # also a dangling one, which mkdir would refuse with a traceback
        raise InvalidArgumentError(f"--work {str(path)!r} is a symbolic link; pass a folder of your own")
    if path.exists() and not path.is_dir():
        raise InvalidArgumentError(f"--work {str(path)!r} is a file; pass a new or empty folder")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)  # writes nothing into a folder that exists
    st = os.lstat(path)  # a link planted since the check above is another user's: refused below
    if st.st_uid != os.geteuid():
        raise InvalidArgumentError(f"--work {str(path)!r} belongs to another user (uid {st.st_uid}); pass a folder "
                                   f"of your own")
    if st.st_mode & 0o022:
        raise InvalidArgumentError(f"--work {str(path)!r} can be written by other users (mode "
                                   f"{stat.S_IMODE(st.st_mode):o}); pass a folder only you can write")
    marker = path / WORK_MARKER
    if any(path.iterdir()):
        owner = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
        if owner != script:
            raise InvalidArgumentError(
                f"--work {str(path)!r} holds files {script} did not write (no {WORK_MARKER} naming it); pass a new "
                f"or empty folder, or the folder an earlier {script} used")
    marker.write_text(script + "\n", encoding="utf-8")
    return path


def run_main(main) -> int:
    """``main()``'s exit code; a toolkit or harness error is one line on stderr and exit code 2."""
    from android_harness.errors import HarnessError
    from toolkit.errors import ToolkitError

    try:
        return main()
    except (ToolkitError, HarnessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def write_record(path: str | Path, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")
