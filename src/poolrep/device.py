"""One place that picks the device, seeds every generator, and records how a run was made."""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


def pick(prefer: str = "auto") -> torch.device:
    """``auto``: cuda when present, else cpu. ``cpu``/``cuda`` force one (cuda absent is an error)."""
    if prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if prefer == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' asked for, but torch sees no CUDA device; use 'auto' or 'cpu'")
    if prefer not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {prefer!r}; use 'auto', 'cpu' or 'cuda'")
    return torch.device(prefer)


def seed_all(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def return_freed_memory(threshold: int = 24 << 20) -> bool:
    """Make glibc's malloc give large freed blocks back to the OS at once (``mallopt(M_MMAP_THRESHOLD)``).

    Why: glibc raises its mmap threshold each time a large block is freed (up to 32 MB), after which blocks of
    that size come from the heap and stay in the process when freed. A stage that computes features batch by
    batch (auto-pooling: 29 MB of conv maps per batch of 100 images, 600 batches for Table 1) then grew to 18 GB
    of resident memory on this 23 GB machine. A fixed threshold of 24 MB keeps every block that large in its own
    mapping, freed when torch frees it. Not lower: at 1 MB every mid-sized activation paid fresh page faults, and
    MobileNetV2 feature extraction (192 px, batch 32, 2 cores) ran 60 ms/image against 34 without the setting;
    at 24 MB it runs 32 ms/image.
    Returns whether it was set (False off glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, int(threshold)))  # -3 = M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def versions() -> dict[str, str]:
    import sklearn

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile")


def host() -> dict[str, Any]:
    """The machine a run's numbers came from (issue 48): CPU model and vendor, its vector extensions, cores, the
    threads torch uses, the kernel dispatch torch chose, and the numerical libraries' builds (BLAS for numpy,
    oneDNN / MKL for torch). Float results move with these, so two runs are compared only with their hosts named."""
    cpu: dict[str, str] = {}
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("model name", "vendor_id", "flags") and k not in cpu:
                cpu[k] = v.strip()
            if len(cpu) == 3:
                break
    except OSError:
        pass
    flags = set(cpu.get("flags", "").split())
    blas: list[dict[str, Any]] = []
    try:
        from threadpoolctl import threadpool_info

        blas = [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
            for d in threadpool_info()
        ]
    except ImportError:
        pass
    torch_config = torch.__config__.show()
    onednn = next((ln.strip() for ln in torch_config.splitlines() if "oneDNN" in ln or "MKL-DNN" in ln), "")
    mkl = next((ln.strip() for ln in torch_config.splitlines() if "Math Kernel Library" in ln), "")
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        capability = ""
    return {
        "cpu_model": cpu.get("model name", platform.processor() or platform.machine()),
        "vendor": cpu.get("vendor_id", ""),
        "vector_extensions": [f for f in VECTOR_FLAGS if f in flags],
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": capability,
        "torch_onednn": onednn,
        "torch_mkl": mkl,
        "numpy_blas": blas,
        "dispatch_env": {k: os.environ[k] for k in DISPATCH_ENV if k in os.environ},
    }


DISPATCH_ENV = ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY")


def git_state(root=None) -> dict[str, Any]:
    """The commit the code ran at and whether the tracked files differed from it (``dirty``); ``unknown`` outside
    a git checkout."""
    import subprocess

    from . import paths

    root = root or paths.ROOT
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30)
        if head.returncode != 0:
            return {"commit": "unknown"}
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "src",
                "notebooks",
                "params.yaml",
                "dvc.yaml",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown"}


def describe(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(dev)}"
    return f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"


TIME_PREFIX = "[time] "


def _log(line: str) -> None:
    """Durations go to the process's own stderr (the terminal of ``dvc repro``/``poolrep run``); in a kernel,
    ipykernel also copies that stream into the notebook, where ``poolrep run`` removes the lines starting with
    ``TIME_PREFIX`` (see ``runner.clean``), so the committed notebook stays the same when a rerun computes the same
    numbers. They are recorded in run.json too."""
    print(line, file=sys.__stderr__ or sys.stderr, flush=True)


@dataclass
class RunLog:
    """What a stage records about itself: device, seed, versions, data sources and wall time.

    In a notebook: ``run = RunLog(stage, seed=..., profile=...).start()`` in the first cell, ``run.finish()`` in
    the last (or use it as a context manager); ``run.data(name, source)`` records where each
    data set came from (``mirror``, ``data/``, ``download``) and whether it is a substitute; ``run.info`` goes
    into the stage's metrics JSON.
    """

    stage: str
    seed: int
    profile: str
    device: str = "auto"
    info: dict[str, Any] = field(default_factory=dict)

    def start(self) -> RunLog:
        self.torch_device = pick(self.device)
        seed_all(self.seed)
        return_freed_memory()
        self._t0 = time.perf_counter()
        self.info = {
            "stage": self.stage,
            "profile": self.profile,
            "seed": self.seed,
            "device": describe(self.torch_device),
            "versions": versions(),
            "host": host(),
            "data": {},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        h = self.info["host"]
        print(
            f"[{self.stage}] profile={self.profile} seed={self.seed} device={self.info['device']} host={h['cpu_model']} "
            f"({', '.join(h['vector_extensions'][-3:]) or 'no vector extensions read'}; torch {h['torch_cpu_capability']})"
        )
        return self

    def data(self, name: str, **what: Any) -> None:
        self.info["data"][name] = what
        print(f"[{self.stage}] data {name}: " + json.dumps(what, default=str))

    @contextmanager
    def timed(self, step: str):
        t0 = time.perf_counter()
        yield
        self.info.setdefault("timings_s", {})[step] = round(time.perf_counter() - t0, 3)
        _log(f"{TIME_PREFIX}{self.stage} {step}: {time.perf_counter() - t0:.1f} s")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def finish(self) -> dict[str, Any]:
        """Stamp the wall time; returns ``info`` for the metrics JSON."""
        self.info["wall_time_s"] = round(self.elapsed, 2)
        _log(f"{TIME_PREFIX}{self.stage} done in {self.info['wall_time_s']:.1f} s")
        return self.info

    def __enter__(self) -> RunLog:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.finish()
