"""One regressor per kernel type; a network's prediction is the sum of its kernels plus a fitted overhead.

Fitting from end-to-end measurements (what every device gives): the networks' kernels are grouped by
signature (op, shapes, stride, activation, dtype — kernels with equal signatures cost the same on one device);
a non-negative least-squares fit of ``y_net = overhead + sum_sig count(net, sig) * t_sig`` gives each
signature's cost ``t_sig``. Where the device also gave per-op profiles, those times are used directly
(they need no decomposition). Then one regressor per kernel type (scikit-learn ``ExtraTreesRegressor``) learns
cost per unit of work (MACs + bytes moved) from the kernel features, so kernels of shapes never measured get a
cost too (the work scales it; trees do not extrapolate a raw time).

Uncertainty: the whole fit is repeated on bootstrap resamples of the networks (``members``); a prediction is
the mean over members and its uncertainty their standard deviation, plus the fit's residual spread (RMS
relative residual of the out-of-bag networks). Predictions are labelled ``predicted:<device>``.

    >>> p = LatencyPredictor.fit_networks(kernel_lists, latencies_ms, device="raspi4")   # doctest: +SKIP
    >>> p.predict(read_kernels("m.tflite"))                                              # doctest: +SKIP
    Prediction(value=12.3, uncertainty=0.6, unit='ms', source='predicted:raspi4', ...)
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from toolkit.errors import InvalidArgumentError, ModelFileError
from toolkit.predict.kernels import FEATURE_NAMES, Kernel

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
QUANTITIES = {"latency_ms": "ms", "energy_mj": "mJ"}


@dataclass(frozen=True)
class Prediction:
    """A predicted latency (ms) or energy (mJ) per inference, never a measurement: ``source`` is
    ``predicted:<device>``. ``uncertainty`` is one standard deviation, in the same unit as ``value``."""

    value: float
    uncertainty: float
    unit: str
    quantity: str
    source: str
    kernels: int
    unseen_kernels: int  # kernels whose signature no fitted network had (their cost comes from the regressor alone)

    @property
    def latency_ms(self) -> float:
        return self.value

    @property
    def uncertainty_ms(self) -> float:
        return self.uncertainty

    @property
    def low(self) -> float:
        return max(0.0, self.value - 2 * self.uncertainty)

    @property
    def high(self) -> float:
        return self.value + 2 * self.uncertainty


def _work(f: np.ndarray) -> np.ndarray:
    """Units of work of kernels (rows of features): MACs plus activation/weight elements read and written."""
    i = {n: k for k, n in enumerate(FEATURE_NAMES)}
    elem = np.maximum(f[:, i["elem_bytes"]], 1.0)
    return f[:, i["macs"]] + (f[:, i["in_bytes"]] + f[:, i["out_bytes"]] + f[:, i["weight_bytes"]]) / elem + 1.0


@dataclass
class _Member:
    """One bootstrap fit: per-kind regressors of cost-per-work, and the constant per-network overhead."""

    overhead: float
    regressors: dict  # kind -> fitted regressor (log cost-per-work)
    fallback: object  # regressor for kinds this member never saw

    def kernel_costs(self, kinds: list[str], feats: np.ndarray) -> np.ndarray:
        out = np.empty(len(kinds))
        work = _work(feats)
        for kind in set(kinds):
            rows = [n for n, k in enumerate(kinds) if k == kind]
            reg = self.regressors.get(kind, self.fallback)
            x = feats[rows] if kind in self.regressors else _with_kind(feats[rows], kind)
            out[rows] = np.exp(reg.predict(np.log1p(x))) * work[rows]
        return out


def _kind_code(kind: str) -> float:
    import zlib

    return float(zlib.crc32(kind.encode()) % 1000)


def _with_kind(feats: np.ndarray, kind: str) -> np.ndarray:
    return np.hstack([feats, np.full((len(feats), 1), _kind_code(kind))])


def _regressor(seed: int, n: int):
    from sklearn.ensemble import ExtraTreesRegressor

    # Without bootstrap every tree fits each training signature exactly; diversity comes from the members.
    return ExtraTreesRegressor(n_estimators=20, min_samples_leaf=1, random_state=seed, bootstrap=False,
                               max_features=1.0, n_jobs=1)


@dataclass
class LatencyPredictor:
    """Kernel-level predictor of one quantity (``latency_ms`` or ``energy_mj``) on one device."""

    device: str
    quantity: str = "latency_ms"
    members: list = field(default_factory=list)
    residual_rel: float = 0.0  # RMS relative error of out-of-bag networks, added to the ensemble spread
    n_networks: int = 0
    n_op_profiles: int = 0
    kinds: tuple = ()

    # -- fitting ----------------------------------------------------------------------------------------------
    @classmethod
    def fit_networks(cls, kernel_lists: Sequence[Sequence[Kernel]], values: Sequence[float], *, device: str,
                     quantity: str = "latency_ms", op_times: Sequence[tuple[Kernel, float]] = (),
                     members: int = 16, seed: int = 0) -> "LatencyPredictor":
        """Fit from networks (their kernels and one measured value each) and optional per-op times
        ``(kernel, ms)``. ``members`` bootstrap fits make the ensemble."""
        from scipy.optimize import nnls

        if quantity not in QUANTITIES:
            raise InvalidArgumentError(f"quantity must be one of {tuple(QUANTITIES)}. Received: quantity={quantity!r}")
        if len(kernel_lists) != len(values):
            raise InvalidArgumentError(f"One measured value per network is needed. Received: {len(kernel_lists)} "
                                       f"kernel lists and {len(values)} values")
        y = np.asarray(values, float)
        if len(y) < 3 and not op_times:
            raise InvalidArgumentError(f"At least 3 measured networks are needed to fit a predictor. "
                                       f"Received: {len(y)} networks; measure more models on device={device!r}")
        if len(y) and (not np.all(np.isfinite(y)) or np.any(y <= 0)):
            raise InvalidArgumentError(f"Measured values must be finite and > 0. Received: min={float(np.min(y))}")
        if not isinstance(members, int) or members < 1:
            raise InvalidArgumentError(f"members must be an integer >= 1. Received: members={members!r}")

        # Signature table: every distinct kernel of the fit, its features and kind, and counts per network.
        sig_index: dict[tuple, int] = {}
        sig_kernel: list[Kernel] = []
        for kernels in kernel_lists:
            for k in kernels:
                s = k.signature()
                if s not in sig_index:
                    sig_index[s] = len(sig_kernel)
                    sig_kernel.append(k)
        for k, _ in op_times:
            s = k.signature()
            if s not in sig_index:
                sig_index[s] = len(sig_kernel)
                sig_kernel.append(k)
        counts = np.zeros((len(kernel_lists), len(sig_kernel)))
        for n, kernels in enumerate(kernel_lists):
            for k in kernels:
                counts[n, sig_index[k.signature()]] += 1
        feats = np.array([k.features() for k in sig_kernel], float) if sig_kernel else np.zeros((0, len(FEATURE_NAMES)))
        kinds = [k.kind for k in sig_kernel]
        profiled: dict[int, list[float]] = {}
        for k, ms in op_times:
            if ms > 0:
                profiled.setdefault(sig_index[k.signature()], []).append(float(ms))

        rng = np.random.default_rng(seed)
        n_nets = len(y)
        fitted: list[_Member] = []
        oob_rel: list[float] = []
        for m in range(members):
            idx = np.arange(n_nets) if m == 0 or n_nets < 3 else rng.integers(0, n_nets, n_nets)
            t_sig = np.full(len(sig_kernel), np.nan)
            overhead = 0.0
            if n_nets:
                a = np.hstack([counts[idx], np.ones((len(idx), 1))])
                # Columns scaled to unit norm so NNLS treats cheap and costly kernels alike.
                scale = np.linalg.norm(a, axis=0)
                scale[scale == 0] = 1.0
                sol, _ = nnls(a / scale, y[idx], maxiter=50 * a.shape[1])
                sol = sol / scale
                seen = counts[idx].sum(axis=0) > 0
                t_sig[seen] = sol[:-1][seen]
                overhead = float(sol[-1])
            for j, times in profiled.items():  # a per-op profile beats a decomposition
                t_sig[j] = float(np.median(times))
            known = np.isfinite(t_sig)
            regs = {}
            work = _work(feats)
            target = np.log(np.maximum(t_sig, 1e-7) / work)
            for kind in sorted(set(kinds)):
                rows = [j for j, kd in enumerate(kinds) if kd == kind and known[j]]
                if rows:
                    regs[kind] = _regressor(seed + m, len(rows)).fit(np.log1p(feats[rows]), target[rows])
            rows_all = [j for j in range(len(kinds)) if known[j]]
            fallback = _regressor(seed + m, len(rows_all)).fit(
                np.log1p(np.vstack([_with_kind(feats[[j]], kinds[j]) for j in rows_all])), target[rows_all])
            member = _Member(overhead=overhead, regressors=regs, fallback=fallback)
            fitted.append(member)
            if m and n_nets >= 3:
                oob = np.setdiff1d(np.arange(n_nets), idx)
                if len(oob):
                    cost = member.kernel_costs(kinds, feats)
                    pred = counts[oob] @ cost + overhead
                    oob_rel += list((pred - y[oob]) / y[oob])
        residual = float(np.sqrt(np.mean(np.square(oob_rel)))) if oob_rel else 0.1
        return cls(device=device, quantity=quantity, members=fitted, residual_rel=residual, n_networks=n_nets,
                   n_op_profiles=len(op_times), kinds=tuple(sorted(set(kinds))))

    # -- predicting ---------------------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        from toolkit.provenance import predicted

        return predicted(self.device)

    def predict(self, kernels: Sequence[Kernel]) -> Prediction:
        """Predicted value of a network from its kernels (see :func:`toolkit.predict.read_kernels`)."""
        return self.predict_many([kernels])[0]

    def predict_many(self, kernel_lists: Sequence[Sequence[Kernel]]) -> list[Prediction]:
        """:meth:`predict` for many networks at once (one regressor call per kernel type and member)."""
        if not self.members:
            raise InvalidArgumentError("This predictor has not been fitted; fit it (ferminet predictor fit) first")
        lists = [list(k) for k in kernel_lists]
        for n, kernels in enumerate(lists):
            if not kernels:
                raise InvalidArgumentError(f"A network with no kernels cannot be predicted. Received: 0 kernels "
                                           f"(network {n})")
        flat = [k for kernels in lists for k in kernels]
        owner = np.repeat(np.arange(len(lists)), [len(k) for k in lists])
        kinds = [k.kind for k in flat]
        feats = np.array([k.features() for k in flat], float)
        totals = np.array([np.bincount(owner, weights=m.kernel_costs(kinds, feats), minlength=len(lists))
                           + m.overhead for m in self.members])  # members x networks
        out = []
        for n, kernels in enumerate(lists):
            value = float(np.mean(totals[:, n]))
            spread = float(np.std(totals[:, n])) if len(self.members) > 1 else 0.0
            uncertainty = math.sqrt(spread ** 2 + (self.residual_rel * value) ** 2)
            unseen = sum(1 for k in kernels if k.kind not in self.kinds)
            if unseen:
                uncertainty = math.sqrt(uncertainty ** 2 + (0.5 * value * unseen / len(kernels)) ** 2)
            out.append(Prediction(value=value, uncertainty=uncertainty, unit=QUANTITIES[self.quantity],
                                  quantity=self.quantity, source=self.source, kernels=len(kernels),
                                  unseen_kernels=unseen))
        return out

    def predict_file(self, path: str | Path) -> Prediction:
        from toolkit.predict.kernels import read_kernels

        return self.predict(read_kernels(path))

    def describe(self) -> str:
        return (f"{self.quantity} on {self.device}: {len(self.members)} members, {len(self.kinds)} kernel types, "
                f"{self.n_networks} networks, {self.n_op_profiles} per-op times, "
                f"out-of-bag RMS relative error {self.residual_rel:.3f}")

    # -- saving -------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the predictor (joblib) to ``path``; a JSON sidecar ``<path>.json`` says what it is."""
        import joblib

        from toolkit import safe_io

        path = Path(path)
        tmp = safe_io.temp_path(path)
        joblib.dump({"format": FORMAT_VERSION, "predictor": self}, tmp)
        safe_io.publish(tmp, path)
        safe_io.write_bytes(Path(f"{path}.json"), json.dumps({
            "format": FORMAT_VERSION, "device": self.device, "quantity": self.quantity, "source": self.source,
            "members": len(self.members), "kinds": list(self.kinds), "networks": self.n_networks,
            "op_profiles": self.n_op_profiles, "residual_rel": self.residual_rel}, indent=1).encode())
        return path

    @staticmethod
    def is_predictor_file(path: str | Path) -> bool:
        """True when ``path`` is a file :meth:`save` wrote (its JSON sidecar names this format)."""
        try:
            return json.loads(Path(f"{path}.json").read_text()).get("format") == FORMAT_VERSION
        except (OSError, ValueError, AttributeError):
            return False

    @classmethod
    def load(cls, path: str | Path) -> "LatencyPredictor":
        import joblib

        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"No predictor file. Received: {str(path)!r}; run `ferminet predictor fit` first")
        # joblib files are pickles: loading one runs code it carries. Load only what this user wrote and no one
        # else can change (as ssh does with its keys).
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise ModelFileError(f"{str(path)!r} is not owned by you or is writable by others, so it could carry "
                                 f"someone else's code; refit it with `ferminet predictor fit` (or chmod go-w it if "
                                 f"it is yours)")
        try:
            data = joblib.load(path)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means the file is not ours
            raise ModelFileError(f"{str(path)!r} is not a predictor file ({exc}); fit one with `ferminet predictor fit`") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION or not isinstance(data.get("predictor"), cls):
            raise ModelFileError(f"{str(path)!r} is not a predictor file of format {FORMAT_VERSION}; refit it with "
                                 f"`ferminet predictor fit`")
        return data["predictor"]
