"""The ``entropy`` stage's steps, in the notebook's order: the CIFAR ResNets trained per pooling and seed (worker
processes), the heads on the frozen MobileNetV2 maps with their learning rates chosen on held-out training maps, the
convergence control, the weight maps and the localisation test with its positive control (CAM)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...features import apply_batched
from ...heads import fit_head, head_recipe, train
from .model import GroupedNet, Net, compiled, maps_of, memory_format, seed_nets, training_net


def fit_cifar(
    pooling: str,
    seed: int | list[int],
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    *,
    widths,
    blocks: int,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    temperature: float = 1.0,
    label_smoothing: float = 0.0,
    stem_stride: int = 1,
    device: torch.device | str = "cpu",
    evaluate=None,
    eval_every: int = 1,
    progress: bool = True,
    compile_grouped: bool = False,
) -> tuple[Net, dict] | tuple[list[Net], list[dict]]:
    """A ``cifar_net`` with ``pooling``, initialised from ``seed`` and trained from scratch (same schedule for all);
    returns it and its learning curves (``train``).

    ``seed`` a list: one network per seed, each initialised as alone, trained side by side as one
    :class:`GroupedNet` (each with its own batches and augmentation) and returned apart, with their curves;
    ``evaluate`` then takes the ``GroupedNet`` and returns one value per seed; ``compile_grouped``: the
    ``GroupedNet`` trains under ``torch.compile`` (``model.compiled``; ``evaluate`` gets the eager module)."""
    n_classes = int(y_train.max()) + 1
    seeds = [seed] if isinstance(seed, int) else list(seed)
    nets, config = seed_nets(pooling, seeds, n_classes, widths, blocks, temperature, stem_stride)
    model = nets[0] if isinstance(seed, int) else GroupedNet.pack(nets, config)
    runner = compiled(model) if compile_grouped and not isinstance(seed, int) else model
    curves = train(
        runner,
        x_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed if isinstance(seed, int) else seeds,
        device=device,
        images=True,
        memory_format=memory_format(widths),
        desc=f"{pooling} s{','.join(map(str, seeds))}",
        evaluate=None if evaluate is None else lambda _: evaluate(model),
        label_smoothing=label_smoothing,
        eval_every=eval_every,
        progress=progress,
    )
    if isinstance(seed, int):
        return model.cpu().eval(), curves
    return [n.eval() for n in model.cpu().unpack()], curves


# One CIFAR ResNet per job, in the processes of ``poolrep.workers.run``: each process receives the data once
# (``cifar_job_data``), then trains the jobs it is handed (``fit_cifar_job``).
_JOB_DATA: dict = {}


def cifar_job_data(
    x_tr: torch.Tensor,
    y_tr: torch.Tensor,
    x_te: torch.Tensor,
    y_te: torch.Tensor,
    recipe: dict,
    curve: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> None:
    """Set this process's training and test tensors, ``fit_cifar`` keywords (all but pooling, seed, epochs) and the
    learning curves' test images ``curve`` (default: the test images themselves)."""
    _JOB_DATA.clear()
    x_c, y_c = (x_te, y_te) if curve is None else curve
    _JOB_DATA.update(x_tr=x_tr, y_tr=y_tr, x_te=x_te, y_te=y_te, x_c=x_c, y_c=y_c, recipe=recipe)


def fit_cifar_job(job: tuple[str, int | tuple[int, ...], int]) -> tuple[dict, dict, np.ndarray] | list:
    """``(pooling, seed, epochs)`` -> the trained ResNet's ``state_dict`` as numpy arrays, its curves (accuracy in % on
    the curve's test images, every ``eval_every`` epochs) and its test items' 0/1 correctness (every test image,
    once, at the end), on the data ``cifar_job_data`` set. Numpy, not tensors: a tensor
    sent back from a spawned process stays in shared memory with one open file descriptor in the receiver for as long
    as it lives (18 networks x ~58 tensors would pass a common limit of 1,024). ``seed`` a tuple: the seeds trained
    side by side (``fit_cifar``), one such triple per seed."""
    from ...metrics.classification import accuracy, correct

    if not _JOB_DATA:
        raise RuntimeError("cifar_job_data(...) must run in this process before fit_cifar_job")
    pooling, seed, epochs = job
    d, dev = _JOB_DATA, _JOB_DATA["recipe"].get("device", "cpu")

    def evaluate(m):
        if isinstance(m, GroupedNet):
            return 100.0 * m.correct(d["x_c"], d["y_c"], device=dev).mean(0)
        return 100.0 * accuracy(m, d["x_c"], d["y_c"], device=dev)

    nets, curves = fit_cifar(
        pooling,
        list(seed) if isinstance(seed, tuple) else seed,
        d["x_tr"],
        d["y_tr"],
        epochs=epochs,
        progress=False,
        evaluate=evaluate,
        **d["recipe"],
    )
    out = [
        (
            {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()},
            c,
            correct(net, d["x_te"], d["y_te"], device=dev),
        )
        for net, c in (zip(nets, curves) if isinstance(seed, tuple) else [(nets, curves)])
    ]
    return out if isinstance(seed, tuple) else out[0]


def cifar_from_state(pooling: str, state: dict, n_classes: int, p: dict) -> Net:
    """The network a ``fit_cifar_job`` trained, rebuilt from its weights (``training_net``, as trained; eval)."""
    net = training_net(pooling, n_classes, p["widths"], p["blocks"], p["temperature"], p["stem_stride"])
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return net.eval()


def cifar_recipe(p: dict) -> dict:
    """``fit_cifar``'s keyword arguments from the stage's params (``config.resolve("entropy")``), all but ``epochs``,
    ``device`` and ``evaluate``: the one place the stage and its benchmarks read the CIFAR ResNet recipe from."""
    return {
        k: p[k]
        for k in (
            "widths",
            "blocks",
            "stem_stride",
            "batch_size",
            "lr",
            "weight_decay",
            "temperature",
            "label_smoothing",
        )
    }


def summarise(df, by=("network", "pooling"), value: str = "accuracy"):
    """Mean, sample std (ddof=1; 0 for one seed), min, max and number of seeds of ``value`` per group."""
    g = df.groupby(list(by), sort=False)[value]
    out = g.agg(
        mean="mean", std=lambda v: float(v.std(ddof=1)) if len(v) > 1 else 0.0, min="min", max="max", seeds="count"
    ).reset_index()
    return out


NETWORKS = ("cifar_resnet", "mobilenet_v2_head")  # the two networks' keys (titles: figures.NETWORK_TITLES)


def control_seeds(p: dict) -> list[int]:
    """The seeds whose ResNets the convergence control retrains: ``p['control_seeds']`` (a subset of ``seeds``; the
    control costs ``control_factor`` x a standard run per pooling and seed; every seed on ``cpu`` since issue 46),
    every seed when the key is absent."""
    cs = list(p.get("control_seeds") or p["seeds"])
    missing = sorted(set(cs) - set(p["seeds"]))
    if missing:
        raise ValueError(
            f"control_seeds {missing} are not among seeds {list(p['seeds'])}: the control pairs each longer run "
            "with the standard run of the same seed"
        )
    return cs


def finite_or_inf(x: float) -> float:
    """A loss to rank by: a diverged run's NaN or inf ranks last (``min`` over NaN keys is order-dependent)."""
    return float(x) if np.isfinite(x) else float("inf")


def choose_head_lrs(p: dict, maps: torch.Tensor, labels: torch.Tensor, device) -> tuple[dict[str, float], list[dict]]:
    """Each head's learning rate, chosen on the training maps alone (issue 34: the GMP head at the shared rate
    ended with a training loss of 2.7-3.9, the others near 0.3): a class-stratified split holds out
    ``head_val_fraction`` of the training maps; for every pooling of ``p['poolings']`` and every rate of
    ``p['head_lr_grid']`` a head (seed ``p['seed']``, ``head_epochs`` epochs) is trained on the rest and scored by
    its cross-entropy on the held-out part (dropout off); the rate with the lowest held-out loss wins (a diverged
    rate ranks last; ties go to the smaller rate). The test
    maps are never seen. Without a grid (or with one rate) every head gets ``p['head_lr']`` and no rows.
    Returns ``({pooling: rate}, rows of pooling, lr, final training loss, held-out loss and accuracy)``."""
    from sklearn.model_selection import train_test_split

    grid = [float(v) for v in (p.get("head_lr_grid") or [p["head_lr"]])]
    if len(grid) == 1:
        return {q: grid[0] for q in p["poolings"]}, []
    fit_i, val_i = train_test_split(
        np.arange(len(labels)), test_size=p["head_val_fraction"], stratify=labels.numpy(), random_state=p["seed"]
    )
    fit_i, val_i = torch.from_numpy(np.sort(fit_i)), torch.from_numpy(np.sort(val_i))
    m_fit, y_fit, m_val, y_val = maps[fit_i], labels[fit_i], maps[val_i], labels[val_i]  # copied once, not per head
    rows = []
    for q in p["poolings"]:
        for lr in grid:
            head, curves = fit_head(
                q, p["seed"], m_fit, y_fit, lr=lr, temperature=p["temperature"], device=device, **head_recipe(p)
            )
            with torch.no_grad():
                logits = apply_batched(head, m_val, batch_size=256)
            rows.append(
                {
                    "pooling": q,
                    "lr": lr,
                    "train_loss": curves["loss"][-1],
                    "val_loss": float(F.cross_entropy(logits, y_val)),
                    "val_accuracy": 100.0 * float((logits.argmax(1) == y_val).float().mean()),
                }
            )
    chosen = {
        q: min((r for r in rows if r["pooling"] == q), key=lambda r: (finite_or_inf(r["val_loss"]), r["lr"]))["lr"]
        for q in p["poolings"]
    }
    for r in rows:
        r["chosen"] = r["lr"] == chosen[r["pooling"]]
    return chosen, rows


def train_all(p: dict, data: dict, device) -> dict:
    """Every pooling in ``p['cifar_poolings']`` x every seed on the CIFAR ResNet, trained from scratch on
    ``data['cifar']`` = (x_tr, y_tr, x_te, y_te), and every pooling in ``p['poolings']`` x every seed as a head on the
    frozen MobileNetV2 maps ``data['maps']``, each head at its learning rate from ``choose_head_lrs`` (training maps
    only); then the convergence control: the ResNet of each pooling in ``p['control_poolings']`` and each seed of
    ``control_seeds(p)`` trained again for ``control_factor`` times the epochs. The ResNets (control included)
    train in ``p['train_procs']`` processes (``poolrep.workers``). Returns ``{"rows": test accuracy (%) per
    network, pooling and seed, "hits": per (network, pooling) the test items x seeds 0/1 correctness, "models": per
    (network, pooling) the trained models (one per seed), "curves": rows of (network, pooling, seed, epoch, train
    loss, test accuracy), the control's among them, "control": {epochs, seeds, hits: per control pooling
    {"standard", "longer"}: test items x control seeds correctness of the standard runs and of the longer ones},
    "head_lr": {pooling: rate}, "head_lr_rows": the choice's rows}``."""
    from ... import workers
    from ...metrics.classification import accuracy, correct

    unknown = set(p["control_poolings"]) - set(p["cifar_poolings"])
    if unknown:
        raise ValueError(
            f"control_poolings {sorted(unknown)} are not among cifar_poolings {p['cifar_poolings']}: "
            "the control retrains the models of a pooling that the run trains"
        )
    x_tr, y_tr, x_te, y_te = data["cifar"]
    curve = data.get("curve")  # the learning curves' test images (default: every test image)
    m_tr, my_tr, m_te, my_te = data["maps"]
    # float32 once, not per batch: casting the float16 cache per mini-batch tripled a GAP head's epoch time
    m_tr, m_te = m_tr.float(), m_te.float()
    out = {"rows": [], "hits": {}, "models": {}, "curves": []}

    def add_curves(network, pname, s, curves):
        for e, (loss, ev) in enumerate(zip(curves["loss"], curves["eval"]), start=1):
            out["curves"].append(
                {"network": network, "pooling": pname, "seed": s, "epoch": e, "train_loss": loss, "test_accuracy": ev}
            )

    def record(network, pname, s, model, curves, c):
        out["hits"].setdefault((network, pname), []).append(c)
        out["models"].setdefault((network, pname), []).append(model)
        acc = 100.0 * float(c.mean())
        out["rows"].append({"network": network, "pooling": pname, "seed": s, "accuracy": acc})
        add_curves(network, pname, s, curves)
        print(f"{network[:12]:12s} {pname:20s} seed {s}: top-1 {acc:.2f} %")

    # the control's longer runs first: the processes take jobs in order, longest first balances them
    long_epochs = p["epochs"] * p["control_factor"]
    cseeds = control_seeds(p)
    # group_seeds: the seeds of one pooling and length train side by side in one job (GroupedNet)
    if p.get("group_seeds"):
        jobs = [(pname, tuple(cseeds), long_epochs) for pname in p["control_poolings"]] + [
            (pname, tuple(p["seeds"]), p["epochs"]) for pname in p["cifar_poolings"]
        ]
    else:
        jobs = [(pname, s, long_epochs) for s in cseeds for pname in p["control_poolings"]] + [
            (pname, s, p["epochs"]) for s in p["seeds"] for pname in p["cifar_poolings"]
        ]
    recipe = dict(
        cifar_recipe(p), device=device, eval_every=p["eval_every"], compile_grouped=p.get("compile_grouped", False)
    )
    results = workers.run(
        fit_cifar_job,
        jobs,
        p["train_procs"],
        init=cifar_job_data,
        init_args=(x_tr, y_tr, x_te, y_te, recipe, curve),
        desc="CIFAR ResNets",
    )
    done = {}
    for (pname, seed, epochs), r in zip(jobs, results):
        done.update(
            {(pname, s, epochs): rs for s, rs in zip(seed, r)}
            if isinstance(seed, tuple)
            else {(pname, seed, epochs): r}
        )
    n_classes = int(y_tr.max()) + 1
    for s in p["seeds"]:
        for pname in p["cifar_poolings"]:
            state, curves, c = done[(pname, s, p["epochs"])]
            record(NETWORKS[0], pname, s, cifar_from_state(pname, state, n_classes, p), curves, c)
    out["head_lr"], out["head_lr_rows"] = choose_head_lrs(p, m_tr, my_tr, device)
    for s in p["seeds"]:
        for pname in p["poolings"]:
            head, curves = fit_head(
                pname,
                s,
                m_tr,
                my_tr,
                lr=out["head_lr"][pname],
                temperature=p["temperature"],
                device=device,
                evaluate=lambda m: 100.0 * accuracy(m, m_te, my_te, device=device),
                **head_recipe(p),
            )
            record(NETWORKS[1], pname, s, head, curves, correct(head, m_te, my_te, device=device))
    out["hits"] = {k: np.stack(v, axis=1) for k, v in out["hits"].items()}
    out["control"] = {"epochs": long_epochs, "seeds": cseeds, "hits": {}}
    cols = [list(p["seeds"]).index(s) for s in cseeds]  # the standard runs' columns of the control seeds
    for pname in p["control_poolings"]:
        longer = []
        for s in cseeds:
            _, curves, c = done[(pname, s, long_epochs)]
            longer.append(c)
            add_curves(NETWORKS[0], f"{pname}, {p['control_factor']}x epochs (control)", s, curves)
            print(f"control: {pname} seed {s}, {long_epochs} epochs: top-1 {100 * c.mean():.2f} %")
        out["control"]["hits"][pname] = {
            "standard": out["hits"][(NETWORKS[0], pname)][:, cols],
            "longer": np.stack(longer, axis=1),
        }
    return out


def convergence(control: dict, seed: int = 0) -> dict:
    """How far the CIFAR ResNets are from converged: per control pooling, the models trained ``control['epochs']``
    epochs minus the standard runs, in test accuracy, paired by seed and test image, with an interval over
    the seeds and the images (``poolrep.claims.seed_interval``). Near 0: the recipe has reached its plateau;
    clearly positive: it has not."""
    from ...claims import seed_interval

    return {
        pname: seed_interval(h["longer"], h["standard"], seed=seed, scale=100, what="test images")
        for pname, h in control["hits"].items()
    }


def control_difference(control: dict, pooling: str, other: str = "gap", seed: int = 0) -> dict | None:
    """Does an ordering survive longer training? ``pooling`` minus ``other``, paired by seed and test image
    (interval over seeds and images, ``poolrep.claims.seed_interval``), after the standard epochs (``"standard"``) and after
    the control's (``"longer"``); None unless both are control poolings."""
    from ...claims import seed_interval

    h = control["hits"]
    if pooling not in h or other not in h:
        return None
    return {
        k: seed_interval(h[pooling][k], h[other][k], seed=seed, scale=100, what="test images")
        for k in ("standard", "longer")
    }


def maps_and_weights(models: dict, feats_of, weighted) -> dict[str, torch.Tensor]:
    """CAM of the GAP model (its predicted class) and each weighted pooling's own weights, on all test items."""
    with torch.no_grad():
        f_gap = feats_of(models["gap"])
        head_gap = models["gap"].head if isinstance(models["gap"], Net) else models["gap"]
        cls = head_gap(f_gap).argmax(1)
        out = {"gap": head_gap.cam(f_gap, cls)}
        for pname in weighted:
            m = models[pname]
            h = m.head if isinstance(m, Net) else m
            out[pname] = h.location_weights(feats_of(m))
    return out


CAM = "cam"  # the GAP model's class activation map, as localisation() keys it (title: figures.MAP_TITLES)


CENTRE = "centre"  # a centre guess, a fixed Gaussian of sd 1/4 of the canvas, as localisation() keys it


def localisation(models: dict, canvases: torch.Tensor, boxes: np.ndarray, size: int, weighted) -> dict:
    """Box share and pointing-game hits (``poolrep.metrics.localization``) on the cluttered canvases, per test item
    x seed: each weighted pooling's own weights, the GAP model's CAM of its predicted class, (``uniform``) the
    box's share of the canvas, what a map that knows nothing scores, and (``CENTRE``) a fixed centred Gaussian, what a
    centre guess scores. ``models[pooling]``: one network per seed."""
    from ...metrics.localization import box_fraction, box_share, centre_prior, pointing_hits

    out = {}
    with torch.no_grad():
        for pname in ["gap", *weighted]:
            shares, hits = [], []
            for m in models[pname]:
                f = maps_of(m, canvases)
                if pname == "gap":
                    w = m.head.cam(f, m.head(f).argmax(1))
                else:
                    w = m.head.location_weights(f)
                shares.append(box_share(w, boxes, size))
                hits.append(pointing_hits(w, boxes, size))
            key = CAM if pname == "gap" else pname
            out[key] = {"share": np.stack(shares, 1), "hit": np.stack(hits, 1).astype(float)}
    frac = box_fraction(boxes, size)
    out["uniform"] = {"share": frac[:, None], "hit": frac[:, None]}
    prior = centre_prior(len(boxes), size)
    out[CENTRE] = {
        "share": box_share(prior, boxes, size)[:, None],
        "hit": pointing_hits(prior, boxes, size)[:, None].astype(float),
    }
    return out


CANVASES = (
    "cluttered",
    "plain",
)  # the localisation canvases, in the order the claims prefer them (fixed before the run)


def accuracy_metrics(hits: dict, seed: int = 0) -> dict:
    """``{network: {pooling: {"mean", "lo", "hi", "per_seed", "minus_gap": {"value", "lo", "hi"}}}}``: test accuracy
    (%) with its 95 % interval over seeds x test images and the difference to GAP paired by seed and image, at full
    precision (metrics.json; the tables round)."""
    from ...claims import seed_interval

    out: dict = {}
    for (net, pooling), h in hits.items():
        acc = seed_interval(h, seed=seed, scale=100, what="test images")
        row = {"mean": acc.value, "lo": acc.lo, "hi": acc.hi, "per_seed": [100.0 * float(v) for v in h.mean(0)]}
        if pooling != "gap" and (net, "gap") in hits:
            d = seed_interval(h, hits[(net, "gap")], seed=seed, scale=100, what="test images")
            row["minus_gap"] = {"value": d.value, "lo": d.lo, "hi": d.hi}
        out.setdefault(net, {})[pooling] = row
    return out


def map_scores(loc: dict, seed: int = 0) -> dict:
    """``{map: {"share" | "hit": {"mean", "lo", "hi"}}}`` (%, 95 % intervals over seeds x canvases) of one canvas
    kind's ``localisation(...)``, at full precision: the numbers behind ``localisation_table`` and metrics.json."""
    from ...claims import seed_interval

    out: dict = {}
    for key, v in loc.items():
        for what in ("share", "hit"):
            e = seed_interval(v[what], seed=seed, scale=100, what="canvases")
            out.setdefault(key, {})[what] = {"mean": e.value, "lo": e.lo, "hi": e.hi}
    return out


def localisation_metrics(loc: dict, seed: int = 0) -> dict:
    """``{canvas kind: map_scores(...)}`` from ``{kind: localisation(...)}``."""
    return {kind: map_scores(lk, seed) for kind, lk in loc.items()}
