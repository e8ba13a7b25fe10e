"""The embedded default job behind `ferminet demo`: no phone, no server, no flags needed.

Starts a virtual Pixel 6 on loopback, runs a short generative synthesis of resnet20 on Fashion-MNIST against
it (prototype -> two generator-inquisitor cycles under accuracy>=0.75 and energy_mj<=10, every candidate converted to validated int8 and measured
on the virtual phone over ADB), builds the HTML energy report, and returns where everything is.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import InvalidArgumentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    out_dir: str = "ferminet-out"
    db: str = "ferminet.db"
    profile: str = "pixel_6"
    prototype: str = "resnet20"
    n_train: int = 12_000
    prototype_epochs: int = 2
    cycles: int = 2
    population: int = 4
    threads: int = 1
    seed: int = 0
    # Operational requirements checked on the int8 model as measured on the (virtual) phone.
    requirements: tuple[str, ...] = ("accuracy>=0.75", "energy_mj<=10")


@dataclass(frozen=True)
class DemoResult:
    synthesis: object  # SynthesisResult
    report_html: str
    device: str


def run_demo(config: DemoConfig = DemoConfig()) -> DemoResult:
    from android_harness.virtual import VirtualPhone
    from toolkit.report import build_report
    from toolkit.store import check_store_path
    from toolkit.synthesis import SynthesisConfig, run_synthesis

    check_store_path(config.db)
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"The demo's output path is a file. Received: out={str(out)!r}")
    run_dir = out / "synthesis"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo always starts fresh; real runs resume with `synthesize --resume`
    out.mkdir(parents=True, exist_ok=True)
    with VirtualPhone(config.profile) as phone:
        synth = run_synthesis(SynthesisConfig(
            prototype=config.prototype, dataset="fashion_mnist", target="android", device=phone.serial,
            requirements=config.requirements, objective="energy", cycles=config.cycles,
            population=config.population, prototype_epochs=config.prototype_epochs, finetune_epochs=2,
            n_train=config.n_train, finetune_n_train=config.n_train // 2, n_eval=1_000, threads=config.threads,
            seed=config.seed), run_dir, config.db)
        device = phone.serial
    report = build_report(config.db, out / "report", run=synth.run_id)
    return DemoResult(synth, report.html_path, device)
