"""poolrep.workers: jobs in spawned processes give the numbers of the same jobs run in one process with one
thread, in the jobs' order; and the entropy stage's CIFAR ResNets and all-seed control come back whole."""

import math
import operator
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from poolrep import workers
from poolrep.papers import entropy as cnn


def tiny_data(n_train=40, n_test=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_tr = torch.rand(n_train, 3, 32, 32, generator=g)
    x_te = torch.rand(n_test, 3, 32, 32, generator=g)
    return x_tr, torch.arange(n_train) % 4, x_te, torch.arange(n_test) % 4


RECIPE = {
    "widths": (4, 8, 8),
    "blocks": 1,
    "stem_stride": 2,
    "batch_size": 16,
    "lr": 0.1,
    "weight_decay": 5e-4,
    "temperature": 1.0,
    "label_smoothing": 0.1,
    "device": "cpu",
    "eval_every": 1,
}


@pytest.mark.parametrize("procs", [0, -1, True, 1.5, "2"])
def test_procs_must_be_a_positive_integer(procs):
    with pytest.raises(ValueError, match="positive integer"):
        workers.run(operator.neg, [1], procs)


def test_results_come_back_in_the_jobs_order_and_errors_are_raised():
    assert workers.run(operator.neg, range(7), 2) == [0, -1, -2, -3, -4, -5, -6]
    assert workers.run(operator.neg, range(3), 1) == [0, -1, -2]
    with pytest.raises(ValueError, match="math domain error"):
        workers.run(math.sqrt, [4.0, -1.0], 2)


@pytest.mark.parametrize(
    "fn, jobs, bad, how",
    [
        (signal.raise_signal, [signal.SIGKILL], 0, "signal 9 (SIGKILL)"),
        ("exit", [0.5, 3], 1, "exit code 3"),  # job 0 sleeps and returns; job 1 ends its process with os._exit(3)
    ],
)
def test_a_worker_that_dies_fails_the_run_at_once_naming_the_job(fn, jobs, bad, how):
    """Issue 29: a worker killed mid-job (a signal, or os._exit) makes run() raise within seconds, naming the job,
    its process and how it ended; multiprocessing.Pool would have waited for the lost result forever."""
    t0 = time.monotonic()
    with pytest.raises(workers.WorkerDied) as e:
        workers.run(_exit_unless_float if fn == "exit" else fn, jobs, 2)
    assert time.monotonic() - t0 < 60
    msg = str(e.value)
    assert f"job {bad} {jobs[bad]!r} in process" in msg and how in msg and "procs 1" in msg, msg


def _exit_unless_float(job):
    """A float: sleep that long and return it; an int: end this process with that exit code."""
    if isinstance(job, float):
        time.sleep(job)
        return job
    os._exit(job)


def test_no_multiprocessing_pool_in_workers():
    import inspect

    src = inspect.getsource(workers)
    assert "ProcessPoolExecutor" in src and ".Pool(" not in src


def test_narrow_resnet_trains_in_one_thread_without_the_heap_crash():
    """Issue 29's crash, as a regression test: on an AMD EPYC without AVX-512, torch 2.14.1 aborted ("double free or
    corruption", or SIGSEGV) in the backward of the widths (4, 8, 8) ResNet's strided 1x1 shortcut conv, with one
    thread, in channels-last memory (also when only the batches were channels-last). Before the fix this child
    died there on every run; a host whose kernel does not crash still checks that the narrow network trains in
    contiguous memory. In a child process, so that a crash cannot take pytest down."""
    code = textwrap.dedent("""
        import torch
        from poolrep.papers import entropy as cnn
        torch.set_num_threads(1)
        assert cnn.memory_format((4, 8, 8)) == torch.contiguous_format
        assert cnn.memory_format((16, 32, 64)) == torch.channels_last
        x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        net, curves = cnn.fit_cifar("gap", 0, x, torch.arange(64) % 4, widths=(4, 8, 8), blocks=1, epochs=12,
                                    batch_size=16, lr=0.1, weight_decay=5e-4, stem_stride=2, progress=False)
        assert len(curves["loss"]) == 12
        conv = net.body.stem[0].weight  # trained, and kept, in contiguous memory (channels-last would differ)
        assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.returncode, r.stderr[-2000:])


def test_train_hands_batches_in_the_models_memory_format():
    from poolrep.heads import train

    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            seen.append((x.is_contiguous(), x.is_contiguous(memory_format=torch.channels_last)))
            return self.fc(x.mean((2, 3)))

    x, y = torch.rand(8, 3, 8, 8), torch.arange(8) % 2
    train(Probe(), x, y, epochs=1, batch_size=4, lr=0.1, progress=False)
    assert seen == [(True, False)] * 2  # contiguous, although augment's crop + flip returns channels-last strides
    seen.clear()
    train(Probe(), x, y, epochs=1, batch_size=4, lr=0.1, progress=False, memory_format=torch.channels_last)
    assert seen == [(False, True)] * 2


def test_a_job_needs_its_data_first():
    from poolrep.papers.entropy import experiment

    experiment._JOB_DATA.clear()
    with pytest.raises(RuntimeError, match="cifar_job_data"):
        cnn.fit_cifar_job(("gap", 0, 1))


def test_two_processes_give_the_numbers_of_one_thread_in_this_process():
    """Each ResNet job is seeded by its own (pooling, seed): the pool's results equal the same jobs trained here
    with one thread, bit for bit: weights, learning curves and test correctness."""
    data = tiny_data()
    jobs = [("entropy_linear", 0, 2), ("gap", 1, 2), ("gap", 0, 1)]
    pooled = workers.run(cnn.fit_cifar_job, jobs, 2, init=cnn.cifar_job_data, init_args=(*data, RECIPE))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        cnn.cifar_job_data(*data, RECIPE)
        here = [cnn.fit_cifar_job(j) for j in jobs]
    finally:
        torch.set_num_threads(threads)
    assert len(pooled) == len(jobs)
    for (sd_a, cu_a, c_a), (sd_b, cu_b, c_b), (_, _, epochs) in zip(pooled, here, jobs):
        assert sd_a.keys() == sd_b.keys() and all(np.array_equal(sd_a[k], sd_b[k]) for k in sd_a)
        assert all(isinstance(v, np.ndarray) for v in sd_a.values())  # no shared-memory tensors held open
        assert cu_a == cu_b and len(cu_a["loss"]) == epochs
        np.testing.assert_array_equal(c_a, c_b)
        assert c_a.shape == (20,) and set(np.unique(c_a)) <= {0.0, 1.0}
    # different seeds give different networks (the jobs are not all the same one)
    assert not np.array_equal(pooled[1][0]["head.fc.weight"], pooled[2][0]["head.fc.weight"])


def test_train_all_returns_every_seeds_control_beside_its_standard_run():
    """train_all in 2 processes: the control's standard hits are the main table's hits, its longer runs one column
    per seed, each from that seed's own longer job (its accuracy is the last point of that seed's control curve);
    the rebuilt models reproduce the correctness computed in the workers."""
    from poolrep.metrics.classification import correct

    x_tr, y_tr, x_te, y_te = tiny_data()
    maps = (torch.rand(24, 8, 2, 2), torch.arange(24) % 4, torch.rand(12, 8, 2, 2), torch.arange(12) % 4)
    p = {
        **{k: v for k, v in RECIPE.items() if k != "device"},
        "widths": [4, 8, 8],
        "seeds": [0, 1],
        "cifar_poolings": ["gap", "entropy_linear"],
        "poolings": ["gap"],
        "control_poolings": ["gap", "entropy_linear"],
        "epochs": 1,
        "control_factor": 2,
        "train_procs": 2,
        "head_epochs": 1,
        "head_batch_size": 8,
        "head_lr": 0.1,
        "head_weight_decay": 0.0,
        "head_dropout": 0.0,
    }
    res = cnn.train_all(p, {"cifar": (x_tr, y_tr, x_te, y_te), "maps": maps}, "cpu")
    ctl = res["control"]
    assert ctl["epochs"] == 2 and ctl["seeds"] == [0, 1] and list(ctl["hits"]) == ["gap", "entropy_linear"]
    for pname, h in ctl["hits"].items():
        assert h["longer"].shape == h["standard"].shape == (20, 2)
        np.testing.assert_array_equal(h["standard"], res["hits"][(cnn.NETWORKS[0], pname)])
        for s in (0, 1):
            for kind, label, epochs in (("longer", f"{pname}, 2x epochs (control)", 2), ("standard", pname, 1)):
                rows = [
                    c
                    for c in res["curves"]
                    if c["pooling"] == label and c["seed"] == s and c["network"] == cnn.NETWORKS[0]
                ]
                assert [c["epoch"] for c in rows] == list(range(1, epochs + 1))
                assert 100 * h[kind][:, s].mean() == pytest.approx(rows[-1]["test_accuracy"], abs=1e-4)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)  # the workers' thread count: the same sums, so the same argmax
            for s, model in enumerate(res["models"][(cnn.NETWORKS[0], pname)]):
                np.testing.assert_array_equal(correct(model, x_te, y_te), h["standard"][:, s])
        finally:
            torch.set_num_threads(threads)
    curves = {(c["pooling"], c["seed"]) for c in res["curves"] if c["network"] == cnn.NETWORKS[0]}
    assert curves == {
        (q, s)
        for s in (0, 1)
        for q in ("gap", "entropy_linear", "gap, 2x epochs (control)", "entropy_linear, 2x epochs (control)")
    }
    assert len([c for c in res["curves"] if c["pooling"] == "gap, 2x epochs (control)"]) == 2 * 2  # 2 seeds x 2 epochs


def test_train_all_control_seeds_subset_pairs_each_longer_run_with_its_own_seed():
    """control_seeds [1] of seeds [0, 1] (issue 34: the control retrains fewer seeds than the orderings use): the
    control's standard hits are seed 1's column of the main table, not seed 0's; only seed 1 is retrained longer;
    every head gets a rate from head_lr_grid (chosen on training maps) and the choice's rows come back."""
    x_tr, y_tr, x_te, y_te = tiny_data()
    maps = (torch.rand(24, 8, 2, 2), torch.arange(24) % 4, torch.rand(12, 8, 2, 2), torch.arange(12) % 4)
    p = {
        **{k: v for k, v in RECIPE.items() if k != "device"},
        "widths": [4, 8, 8],
        "seed": 0,
        "seeds": [0, 1],
        "control_seeds": [1],
        "cifar_poolings": ["gap", "entropy_linear"],
        "poolings": ["gap", "gmp"],
        "control_poolings": ["gap", "entropy_linear"],
        "epochs": 1,
        "control_factor": 2,
        "train_procs": 1,
        "head_epochs": 1,
        "head_batch_size": 8,
        "head_lr": 0.1,
        "head_lr_grid": [0.01, 0.1],
        "head_val_fraction": 0.25,
        "head_weight_decay": 0.0,
        "head_dropout": 0.0,
    }
    res = cnn.train_all(p, {"cifar": (x_tr, y_tr, x_te, y_te), "maps": maps}, "cpu")
    ctl = res["control"]
    assert ctl["seeds"] == [1]
    for pname, h in ctl["hits"].items():
        assert h["longer"].shape == h["standard"].shape == (20, 1)
        np.testing.assert_array_equal(h["standard"][:, 0], res["hits"][(cnn.NETWORKS[0], pname)][:, 1])
    longer = {(c["pooling"], c["seed"]) for c in res["curves"] if "control" in c["pooling"]}
    assert longer == {(f"{q}, 2x epochs (control)", 1) for q in ("gap", "entropy_linear")}
    assert set(res["head_lr"]) == {"gap", "gmp"} and set(res["head_lr"].values()) <= {0.01, 0.1}
    assert len(res["head_lr_rows"]) == 4 and sum(r["chosen"] for r in res["head_lr_rows"]) == 2


def test_exit_codes_wait_for_the_dead_process_to_be_reaped():
    """The pool can report itself broken before the dead process is reaped (its exit code still None): the error
    then named no cause ("still running") on a loaded host. _exit_codes polls until one code is known, briefly."""

    class Late:  # a process whose exit code appears on the 4th look, as a reaped SIGKILL would
        def __init__(self, code, after):
            self.code, self.after, self.looks = code, after, 0

        @property
        def exitcode(self):
            self.looks += 1
            return self.code if self.looks > self.after else None

    dead, alive = Late(-9, 3), Late(None, 0)
    codes = workers._exit_codes({1: dead, 2: alive}, wait_s=5.0)
    assert codes == {1: -9, 2: None} and dead.looks == 4
    t0 = time.monotonic()
    assert workers._exit_codes({2: Late(None, 0)}, wait_s=0.2) == {2: None}  # none ever known: gives up
    assert time.monotonic() - t0 < 2
