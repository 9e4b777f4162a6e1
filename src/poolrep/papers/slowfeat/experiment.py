"""The ``slowfeat`` stage's steps, in the notebook's order: the clips cut into scenes, every model trained once per
seed (in worker processes), the descriptors, the temporal and class retrieval per seed, the AUC against training
steps, the loss plateau and the pool groups' coherence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...data.scenes import Frames, load_scenes
from ...features import apply_batched
from ...normalize import l2_normalize
from .model import (
    ConvAutoEncoder,
    FCAutoEncoder,
    SupervisedNet,
    TrainCfg,
    layer_specs,
    stack_features,
    temporal_pairs,
    train_autoencoder,
    train_greedy,
    train_supervised,
)


def pick_clips(names: list[str], folder: str | None = None) -> list[Path]:
    """The clips called ``names`` among the registered clips (``folder`` None) or the videos of ``folder``."""
    from ...data.video import clips, folder_clips

    avail = clips() if folder is None else folder_clips(folder)
    by_name = {p.name: p for p in avail}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"no clip named {', '.join(missing)}; available: {', '.join(sorted(by_name))}")
    return [by_name[n] for n in names]


def sizes_table(p: dict):
    """This run's sizes against the paper's (from the stage's parameters ``p``)."""
    import pandas as pd

    return pd.DataFrame(
        [
            ("layer-1 / layer-2 filters", f"{p['n_filters1']} / {p['n_filters2']}", "64 / 64"),
            (
                "Adam steps per layer (batch of pairs): auto-encoders; DrLIM",
                f"{p['steps1']} / {p['steps2']} ({p['batch']}); {p['drlim_steps']}",
                "not given",
            ),
            (
                "video: training / test clips",
                f"{len(p['train_videos'])} / {len(p['test_videos'])} of the mirror's",
                "~150,000 / ~20,000 YouTube frames",
            ),
            ("frames per clip", p["max_frames"] or "all", "not given"),
            ("ZCA fitted on", f"{10 * p['zca_fit_per_class']:,} CIFAR-10 training images", "the whole data set"),
            ("fully connected model: pairs, steps", f"{p['fc_pairs']:,}, {p['fc_steps']}", "~170,000 patches"),
            (
                "supervised ConvNet: train per class, steps",
                f"{p['sup_train_per_class']}, {p['sup_steps']}",
                "not given",
            ),
            (
                "class-based PR: queries / database per class",
                f"{p['class_test_per_class']} / {p['class_train_per_class']}",
                "1000 / 5000",
            ),
            ("neighbours (temporal / class)", f"{p['temporal_k']} / {p['class_k']}", "40 / 40"),
            ("Figure 1 toy: views, step", f"{p['toy_n']} x {p['toy_n']}, {p['toy_step_deg']} deg", "90 x 90, 1 deg"),
        ],
        columns=["what", f"ours ({p['profile']})", "paper"],
    )


def load_video(p: dict):
    """``(train, test, train_grey, train_clips, test_clips)``: colour frames of the training and the test clips cut
    into scenes, and grey training frames (for the fully connected model's patches)."""
    tr_clips, te_clips = (
        pick_clips(p["train_videos"], p["video_folder"]),
        pick_clips(p["test_videos"], p["video_folder"]),
    )
    kw = dict(
        threshold=p["cut_threshold"],
        min_len=p["scene_min"],
        max_len=p["scene_max"],
        step=p["frame_step"],
        max_frames=p["max_frames"],
        segment_gap=p["segment_gap"],
    )
    size = (p["image_size"], p["image_size"])
    train, test = load_scenes(tr_clips, size, **kw), load_scenes(te_clips, size, **kw)
    fc_h = int(round(p["fc_frame_width"] * 3 / 4))
    train_grey = load_scenes(tr_clips, (p["fc_frame_width"], fc_h), gray=True, **kw)
    if set(train.names) & set(test.names):
        raise ValueError("train and test scenes must come from different videos")
    return train, test, train_grey, tr_clips, te_clips


def train_fc_models(patches: torch.Tensor, p: dict, device) -> dict[float, FCAutoEncoder]:
    """Fig. 2: the fully connected model trained with each ``alpha`` of ``p['fc_alphas']`` (``beta = fc_beta``)."""
    models = {}
    for a in p["fc_alphas"]:
        torch.manual_seed(p["seed"])
        m = FCAutoEncoder(p["fc_patch"] * p["fc_patch"], p["fc_atoms"], p["fc_group"])
        cfg = TrainCfg(steps=p["fc_steps"], batch=p["fc_batch"], lr=p["lr"], alpha=a, beta=p["fc_beta"], seed=p["seed"])
        hist = train_autoencoder(m, patches, None, cfg, device, desc=f"FC alpha={a}")
        models[a] = m.cpu()
        print(f"alpha={a}: final loss {hist[-1]['loss']:.3f} (rec {hist[-1]['rec']:.3f}, slow {hist[-1]['slow']:.3f})")
    return models


def specs_of(p: dict):
    """The two layers' shapes from the stage's parameters (``layer_specs``)."""
    return layer_specs(
        p["n_filters1"], p["kernel1"], p["group1"], p["pool1"], p["n_filters2"], p["kernel2"], p["group2"], p["pool2"]
    )


def stack_cfgs(p: dict, seed: int) -> dict[str, tuple[str, list[TrainCfg]]]:
    """Each stack's training method and per-layer configuration for one ``seed``: ``ours`` (Eq. 2 with alpha,
    beta), ``sparse`` (the paper's beta = 0 baseline: the same alpha, no slowness), ``group`` (group sparsity,
    beta = 0: an extra row) and ``DrLIM`` (Eq. 1)."""
    base = dict(batch=p["batch"], seed=seed)
    steps = (p["steps1"], p["steps2"])
    return {
        "ours": (
            "slow",
            [
                TrainCfg(steps=s, lr=p["lr"], alpha=p["alpha"], beta=p["beta"], keep_every=p["keep_every"], **base)
                for s in steps
            ],
        ),
        # the paper's beta = 0 model: "sparsity only" (Fig. 5b), the same alpha, slowness off
        "sparse": (
            "slow",
            [
                TrainCfg(steps=s, lr=p["lr"], alpha=p["alpha"], beta=0.0, keep_every=p["keep_every"], **base)
                for s in steps
            ],
        ),
        # an extra row, not the paper's baseline: group sparsity on the pooled outputs, beta = 0
        "group": (
            "slow",
            [TrainCfg(steps=s, lr=p["lr"], alpha=p["group_alpha"], beta=0.0, sparsity="group", **base) for s in steps],
        ),
        "DrLIM": (
            "drlim",
            [
                TrainCfg(steps=p["drlim_steps"], lr=p["drlim_lr"], margin=p["margin"], negatives=p["negatives"], **base)
                for _ in steps
            ],
        ),
    }


MODELS = ("ours", "sparse", "group", "DrLIM", "supervised")  # every trained model, each trained once per seed


_JOB_DATA: dict = {}


def seeded_job_data(x: torch.Tensor, scene: np.ndarray, x_sup: torch.Tensor, y_sup: torch.Tensor, p: dict, device):
    """Set this process's training frames, scenes, supervised CIFAR-10 subset, parameters and device."""
    _JOB_DATA.clear()
    _JOB_DATA.update(x=x, scene=scene, x_sup=x_sup, y_sup=y_sup, p=p, device=device)


def supervised_net(specs, p: dict, labels: torch.Tensor) -> SupervisedNet:
    """The supervised comparison net for the stage's parameters ``p`` and its training ``labels`` (the classes)."""
    return SupervisedNet(specs, n_classes=int(labels.max()) + 1, size=p["image_size"], hidden=p["sup_hidden"])


def _numpy_state(m: nn.Module) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in m.state_dict().items()}


def fit_seeded_job(job: tuple[str, int]) -> tuple[object, object]:
    """``(model, seed)`` -> the trained model's state (numpy: a list of per-layer states for a stack, one state for
    the supervised net) and its loss histories, on the data ``seeded_job_data`` set."""
    if not _JOB_DATA:
        raise RuntimeError("seeded_job_data(...) must run in this process before fit_seeded_job")
    name, seed = job
    d, p, dev = _JOB_DATA, _JOB_DATA["p"], _JOB_DATA["device"]
    specs = specs_of(p)
    if name == "supervised":
        torch.manual_seed(seed)
        net = supervised_net(specs, p, d["y_sup"])
        hist = train_supervised(net, d["x_sup"], d["y_sup"], p["sup_steps"], p["sup_batch"], p["lr"], seed, dev)
        return _numpy_state(net), hist
    method, cfgs = stack_cfgs(p, seed)[name]
    layers, hists = train_greedy(d["x"], d["scene"], specs, cfgs, method, dev)
    return [_numpy_state(layer) for layer in layers], hists


def stack_from_states(specs, states: list[dict], in_ch: int = 3) -> list[ConvAutoEncoder]:
    """The trained layers of a stack rebuilt from ``fit_seeded_job``'s states (eval mode, cpu)."""
    layers, ch = [], in_ch
    for spec, st in zip(specs, states):
        layer = ConvAutoEncoder(ch, spec["n_filters"], spec["kernel"], spec["group"], spec["pool"])
        layer.load_state_dict({k: torch.from_numpy(v) for k, v in st.items()})
        layers.append(layer.eval())
        ch = spec["n_filters"] // spec["group"]
    return layers


def train_seeds(
    x: torch.Tensor, scene: np.ndarray, x_sup: torch.Tensor, y_sup: torch.Tensor, p: dict, device, cost=None
):
    """Every model of ``MODELS`` trained once per seed of ``p['seeds']`` (issue 32: a verdict about a training method
    needs the run-to-run variation), in ``p['train_procs']`` processes of one torch thread (``poolrep.workers``; 1:
    here, on ``device``). Returns ``{seed: {"stacks": {name: layers}, "supnet": SupervisedNet, "hists": {name:
    per-layer loss histories}, "sup_hist": losses}}``."""
    from ... import workers

    specs = specs_of(p)
    jobs = [(name, s) for s in p["seeds"] for name in MODELS]
    if cost is not None:  # longest first (job_seconds): the last job to start is a short one, so no core idles long
        jobs.sort(key=lambda j: -cost[j[0]])
    procs = p["train_procs"]
    dev = device if procs == 1 else "cpu"
    done = dict(
        zip(
            jobs,
            workers.run(
                fit_seeded_job,
                jobs,
                procs,
                init=seeded_job_data,
                init_args=(x, scene, x_sup, y_sup, p, dev),
                desc="slowfeat models",
            ),
        )
    )
    out = {}
    for s in p["seeds"]:
        stacks = {n: stack_from_states(specs, done[(n, s)][0], x.shape[1]) for n in MODELS if n != "supervised"}
        sup = supervised_net(specs, p, y_sup)
        sup.load_state_dict({k: torch.from_numpy(v) for k, v in done[("supervised", s)][0].items()})
        out[s] = {
            "stacks": stacks,
            "supnet": sup.eval(),
            "hists": {n: done[(n, s)][1] for n in stacks},
            "sup_hist": done[("supervised", s)][1],
        }
        print(
            f"seed {s}: final loss per layer "
            + "; ".join(f"{n} {[round(h[-1]['loss'], 3) for h in out[s]['hists'][n]]}" for n in stacks)
            + f"; supervised {out[s]['sup_hist'][-1]:.3f}"
        )
    return out


def descriptors(stacks: dict, supnet: SupervisedNet, raw: dict, whitened: dict, device) -> dict[str, tuple]:
    """Every method's descriptor of each set (``raw``/``whitened``: {set: N x 3 x H x W}, same keys, in order):
    pixels, ZCA pixels, and the flattened pooled outputs of layer 1 and 2 of each stack and of the supervised
    net. Returns {method: tuple over the sets}."""
    sets = list(whitened)
    feats = {"pixels": tuple(torch.from_numpy(raw[s]) for s in sets), "ZCA pixels": tuple(whitened[s] for s in sets)}
    for name, layers in stacks.items():
        per = [stack_features(layers, whitened[s], device) for s in sets]
        for li in range(len(layers)):
            feats[f"{name} L{li + 1}"] = tuple(f[li] for f in per)
    supnet.to(device).eval()
    for li in range(len(supnet.stages)):
        feats[f"supervised L{li + 1}"] = tuple(
            apply_batched(lambda b, li=li: supnet.stage_features(b)[li].flatten(1), whitened[s], device=device)
            for s in sets
        )
    return feats


def random_frame_pairs(group: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n x 2`` random pairs of frames from different groups (seeded; ``group``: e.g. each frame's camera shot, so
    that no pair is two segments of one view): the scale against which an adjacent pair's code change is measured."""
    group = np.asarray(group)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(group), (2, 4 * n))
    keep = group[a] != group[b]
    if keep.sum() < n:
        raise ValueError(f"need {n} pairs of frames from different groups; found {int(keep.sum())}")
    return np.stack([a[keep][:n], b[keep][:n]], axis=1)


def per_scene_mean(values: np.ndarray, pairs: np.ndarray, scene: np.ndarray) -> np.ndarray:
    """The mean of per-pair ``values`` over each scene's adjacent pairs, in scene order: one item per scene, since
    the pairs of one scene are far from independent (an interval over pairs would be too narrow)."""
    s = np.asarray(scene)[pairs[:, 0]]
    return np.array([values[s == k].mean() for k in np.unique(s)])


def competing_queries(frames: Frames, queries: np.ndarray) -> np.ndarray:
    """Per temporal query: does its ranking hold frames of its own clip that are neither its scene nor junk (another
    camera shot of the clip)? Where not (a single-shot clip, the rest of the shot being junk), the query competes
    only with other clips' frames, and its ranking measures which clip a frame is from rather than which scene: the
    paper's test videos (YouTube, with cuts) rank a frame's scene against the same video's other scenes."""
    q = np.asarray(queries)
    same_clip = frames.video[None, :] == frames.video[q][:, None]
    other_shot = frames.shot[None, :] != frames.shot[q][:, None]
    return (same_clip & other_shot).any(axis=1)


def code_change(codes, adjacent: np.ndarray, random: np.ndarray) -> np.ndarray:
    """How much a model's codes change between adjacent frames of a scene, per adjacent pair: ``1 - cos(h_t,
    h_t+1)`` divided by the mean of ``1 - cos`` over ``random`` pairs of frames (``random_frame_pairs``: from
    different camera shots, so that a model whose codes are all alike does not pass for slow). 0: identical codes;
    1: as different as two random frames of different shots. What slowness (Eq. 2's beta term) is meant to lower, measured on held-out frames."""
    h = l2_normalize(torch.as_tensor(np.asarray(codes), dtype=torch.float64).flatten(1))

    def dist(pairs):
        return 1.0 - (h[pairs[:, 0]] * h[pairs[:, 1]]).sum(1).numpy()

    scale = float(dist(random).mean())
    if not scale > 0:
        raise ValueError("every code is the same: the code change is undefined")
    return dist(adjacent) / scale


def evaluate_seed(trained: dict, raw: dict, X: dict, test: Frames, qs, db, p: dict, device) -> dict:
    """One seed's models on both protocols: temporal PR on the test scenes (the query's other shot frames as junk,
    issue 32), class PR on CIFAR-10 (recall base ``class_recall_base`` and ``all``), and the code change between
    adjacent test frames of ``ours`` and ``sparse`` (both layers; per scene: the mean over its adjacent pairs, the
    scale from random pairs of frames of different shots). Returns ``{"res_t", "res_c", "res_c_all",
    "res_t_seg" (the temporal protocol with the other segments of the shot counted wrong): {method: PR}, "change":
    {method: per test scene}}``."""
    from ...metrics import pr

    feats = descriptors(trained["stacks"], trained["supnet"], raw, X, device)
    out = {
        "res_t": {
            k: pr.temporal_pr(v[0], test.scene, p["temporal_k"], p["temporal_recall_base"], test.shot)
            for k, v in feats.items()
        },
        "res_c": {k: class_query_auc(v[1], v[2], db.labels, qs.labels, p) for k, v in feats.items()},
        "res_c_all": {k: class_query_auc(v[1], v[2], db.labels, qs.labels, p, "all") for k, v in feats.items()},
        # the protocol before issue 32, shown beside: the other segments of the query's shot count as wrong
        "res_t_seg": {
            k: pr.temporal_pr(v[0], test.scene, p["temporal_k"], p["temporal_recall_base"]) for k, v in feats.items()
        },
    }
    adjacent = temporal_pairs(test.scene)
    rand = random_frame_pairs(test.shot, len(adjacent), p["seed"])
    out["change"] = {
        k: per_scene_mean(code_change(feats[k][0], adjacent, rand), adjacent, test.scene)
        for k in feats
        if k.split()[0] in ("ours", "sparse", "pixels")
    }
    return out


def by_seed(per_seed: dict, what: str, attr: str | None = "per_query_auc") -> dict[str, np.ndarray]:
    """``{method: items x seeds}`` from ``{seed: evaluate_seed(...)}``: each seed one column, in seed order; a method
    that is not trained (pixels, ZCA pixels) is the same under every seed and keeps one column."""
    seeds = list(per_seed)
    methods = list(per_seed[seeds[0]][what])
    get = (lambda r: getattr(r, attr)) if attr else (lambda r: r)
    out = {m: np.stack([np.asarray(get(per_seed[s][what][m])) for s in seeds], axis=1) for m in methods}
    return {m: a if m.split()[0] in MODELS else a[:, :1] for m, a in out.items()}


def _kept_layer(specs, li: int, in_ch: int, state: dict) -> ConvAutoEncoder:
    """Layer ``li`` of a stack rebuilt from a state kept during training (``TrainCfg.keep_every``), eval mode, cpu."""
    spec = specs[li]
    ch = in_ch if li == 0 else specs[li - 1]["n_filters"] // specs[li - 1]["group"]
    layer = ConvAutoEncoder(ch, spec["n_filters"], spec["kernel"], spec["group"], spec["pool"])
    layer.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return layer.eval()


def kept_stack(layers: list, hists: list, li: int, step: int, specs, in_ch: int) -> list:
    """The stack whose layer ``li`` is its state kept at ``step`` (1-based) and whose lower layers are the final ones
    (layer 2 is trained on the final, frozen layer 1): ``layers[:li] + [layer li at step]``."""
    h = hists[li][step - 1] if 1 <= step <= len(hists[li]) else {}
    if "state" not in h:
        raise ValueError(f"layer {li + 1} kept no state at step {step} (keep_every must divide it)")
    return list(layers[:li]) + [_kept_layer(specs, li, in_ch, h["state"])]


def auc_against_steps(trained: dict, X_test: torch.Tensor, test: Frames, p: dict, device, seed: int | None = None):
    """Issue 32: the main model's (``ours``) temporal AUC on the test scenes against its training steps, from the
    states kept every ``keep_every`` steps (layer 1 alone; layer 2 on the final layer 1), beside its training loss
    there: evidence of where the cut training sits, never used to choose the steps (that would fit the test)."""
    import pandas as pd

    from ...metrics import pr

    s = list(trained)[0] if seed is None else seed
    specs = specs_of(p)
    layers = trained[s]["stacks"]["ours"]
    hists = trained[s]["hists"]["ours"]
    rows = []
    for li, hist in enumerate(hists):
        for step, h in enumerate(hist, 1):
            if "state" not in h:
                continue
            stack = kept_stack(layers, hists, li, step, specs, X_test.shape[1])
            codes = stack_features(stack, X_test, device)[li]
            res = pr.temporal_pr(codes, test.scene, p["temporal_k"], p["temporal_recall_base"], test.shot)
            w = max(1, p["keep_every"] // 5)
            rows.append(
                {
                    "layer": f"L{li + 1}",
                    "step": step,
                    "training loss": float(np.mean([x["loss"] for x in hist[max(0, step - w) : step]])),
                    "temporal AUC": float(np.mean(res.per_query_auc)),
                }
            )
    return pd.DataFrame(rows)


def class_query_auc(f_db, f_qs, db_labels, qs_labels, p: dict, recall_base: str | None = None):
    """The class-based PR of CIFAR-10 queries ``f_qs`` against the database ``f_db`` (``class_k`` neighbours, recall
    base ``class_recall_base`` unless given): the one function behind the class AUCs of ``evaluate_seed`` and of
    ``class_auc_at_checkpoint``."""
    from ...metrics import pr

    base = p["class_recall_base"] if recall_base is None else recall_base
    return pr.class_pr(f_qs, qs_labels, f_db, db_labels, p["class_k"], base)


def class_auc_at_checkpoint(trained: dict, X: dict, qs, db, p: dict, device, back: int = 1) -> dict:
    """Issue 42, the CIFAR claims' stability gate: the per-query class AUC of ``ours`` L1 and L2 at the states kept
    ``keep_every``, ..., ``back * keep_every`` steps before the end of training, every seed, on the same queries and
    database as ``evaluate_seed`` (``X``: the whitened sets ``"db"`` and ``"qs"``) and with the same function
    (``class_query_auc``). L1 alone at its step; L2 at its step on the final L1 (as ``auc_against_steps``). Returns
    ``{"ours L1": {"step", "final", "auc": queries x seeds, "curve": {step: queries x seeds}}, "ours L2": {...}}``
    with ``step`` = ``steps - keep_every`` (the gate's, ``sf.claims``' ``checkpoint`` argument) and ``curve`` every
    kept step asked for (the stability table)."""
    if not p["keep_every"]:
        raise ValueError("keep_every = 0 keeps no state: the stability gate needs the state before the last")
    if back < 1:
        raise ValueError(f"back must be >= 1 checkpoint, got {back}")
    specs = specs_of(p)
    seeds = list(trained)
    out = {}
    for li in range(len(specs)):
        steps = len(trained[seeds[0]]["hists"]["ours"][li])
        curve = {}
        for step in range(steps - back * p["keep_every"], steps, p["keep_every"]):
            if step < 1:
                continue
            cols = []
            for s in seeds:
                stack = kept_stack(
                    trained[s]["stacks"]["ours"], trained[s]["hists"]["ours"], li, step, specs, X["db"].shape[1]
                )
                f_db, f_qs = (stack_features(stack, X[k], device)[li] for k in ("db", "qs"))
                cols.append(np.asarray(class_query_auc(f_db, f_qs, db.labels, qs.labels, p).per_query_auc))
            curve[step] = np.stack(cols, axis=1)
        step = steps - p["keep_every"]
        out[f"ours L{li + 1}"] = {"step": step, "final": steps, "auc": curve[step], "curve": curve}
    return out


def clip_counts(train: Frames, test: Frames):
    """Per clip (training and test): frames, cuts, camera shots that hold a scene, scenes, and the scenes that would
    compete with their own clip's other shots as temporal queries (those of a clip with two or more such shots;
    ``competing_queries``). Fixed by the clips' shot structure alone, before any model is trained: how many competing
    queries the seven clips can give at all."""
    import pandas as pd

    rows = []
    for role, f in (("train", train), ("test", test)):
        for vi, name in enumerate(f.names):
            sel = f.video == vi
            shots, scenes = len(np.unique(f.shot[sel])), len(np.unique(f.scene[sel]))
            rows.append(
                {
                    "clip": name,
                    "role": role,
                    "frames in scenes": int(sel.sum()),
                    "cuts": int(f.cuts[vi]),
                    "shots with a scene": shots,
                    "scenes": scenes,
                    "competing scenes": scenes if shots > 1 else 0,
                }
            )
    return pd.DataFrame(rows)


def training_losses(trained: dict) -> dict[str, dict[int, np.ndarray]]:
    """Per model and layer (``"ours L1"``, ..., ``"supervised"``), per seed, the training loss at every step."""
    seeds = list(trained)
    out: dict[str, dict[int, np.ndarray]] = {}
    for n in trained[seeds[0]]["hists"]:
        for li in range(len(trained[seeds[0]]["hists"][n])):
            out[f"{n} L{li + 1}"] = {s: np.array([h["loss"] for h in trained[s]["hists"][n][li]]) for s in seeds}
    out["supervised"] = {s: np.asarray(trained[s]["sup_hist"], float) for s in seeds}
    return out


def loss_fall(losses, window: float) -> float:
    """How much the training loss still falls at the end: ``(mean of the window before the last - mean of the last
    window) / |mean of the window before|``, each window ``window`` of the steps (means over windows of steps, since
    one minibatch's loss is noisy). 0.05: the last fifth of training still took 5 % off; near 0 or below: flat."""
    v = np.asarray(losses, dtype=np.float64)
    w = max(1, int(round(window * len(v))))
    if len(v) < 2 * w:
        raise ValueError(f"loss_fall: {len(v)} steps cannot hold two windows of {w}")
    prev, last = v[-2 * w : -w].mean(), v[-w:].mean()
    return float((prev - last) / abs(prev)) if prev != 0 else 0.0


def group_coherence(atoms: torch.Tensor, group: int) -> np.ndarray:
    """Per pool group of ``group`` consecutive decoder atoms (``n x ...``): mean |cosine| between the atoms of the
    group minus mean |cosine| between its atoms and every atom of other groups. Above 0: a group's filters are more
    alike than filters of different groups (Fig. 5c: "Most groups in the filter bank trained with slowness tend to
    be visually similar")."""
    a = l2_normalize(atoms.flatten(1).double())
    c = (a @ a.T).abs().numpy()
    n = len(c)
    if n % group or group < 2:
        raise ValueError(f"{n} atoms cannot form groups of {group} (>= 2)")
    g = np.arange(n) // group
    out = []
    for k in range(n // group):
        inside, other = g == k, g != k
        w = c[np.ix_(inside, inside)]
        within = (w.sum() - np.trace(w)) / (group * (group - 1))
        out.append(within - c[np.ix_(inside, other)].mean())
    return np.asarray(out)
