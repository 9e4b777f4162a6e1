"""Auto-pooling's grey model (Sec. 3.1): a non-convolutional SAE on grey video patches, P for every lambda and
seed, the invariance score of Fig. 6 over held-out pairs x seeds, and the row-shuffled control."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ...data.framepairs import Pairs
from .model import PatchModel, train_patch_model
from .pools import shuffled_rows


def pair_batches(pairs: Pairs, model: PatchModel, batch_size: int, device="cpu", seed: int = 0):
    """``batches(epoch)`` over stored patch pairs (the grey model): shuffled each epoch, each batch's patch codes
    computed on the fly."""

    def feats(x):
        with torch.no_grad():
            return model.encode_patches(torch.as_tensor(x.reshape(len(x), -1), dtype=torch.float32, device=device))

    def batches(epoch: int):
        order = np.random.default_rng([seed, epoch]).permutation(len(pairs))
        for s in range(0, len(order), batch_size):
            idx = np.sort(order[s : s + batch_size])
            yield feats(pairs.a[idx]), feats(pairs.b[idx])

    return batches


@torch.no_grad()
def pair_codes(pairs: Pairs, model: PatchModel, batch_size: int = 1000, device="cpu"):
    """The patch codes of both frames of every pair: two ``N x hidden`` float64 arrays."""
    a_out, b_out = [], []
    for s in range(0, len(pairs), batch_size):
        for src, dst in ((pairs.a, a_out), (pairs.b, b_out)):
            p = src[s : s + batch_size]
            x = torch.as_tensor(p.reshape(len(p), -1), dtype=torch.float32, device=device)
            dst.append(model.encode_patches(x).double().cpu().numpy())
    return np.concatenate(a_out), np.concatenate(b_out)


@dataclass
class GreyModel:
    """Sec. 3.1's non-convolutional grey model: one SAE, P per (seed, lambda), codes of the held-out pairs."""

    model: PatchModel
    P: dict  # (seed, lambda) -> K x hidden float64 array
    parts: dict  # "raw" | (seed, lambda) | (seed, "random") -> per-pair (near, far)
    sparsity: float
    costs: dict  # lambda -> held-out costs of the first seed's P, P = 0 and the one-hot start


def grey_model(videos, names: list[str], p: dict, device, run) -> GreyModel:
    """SAE on grey video patches, then P for every lambda (Fig. 6) and every seed in ``grey_seeds`` (the seed sets
    P's start and its training pairs) on consecutive-frame patch pairs of the clips' first ``heldout_from``; the
    invariance score on held-out pairs of the rest, and, per seed, the row-shuffled control of the claims' P."""
    from ...data.framepairs import load_clips, sample_pairs
    from ...metrics.invariance import invariance_parts
    from ...pooling.autopool import heldout_cost, onehot_P, train_autopool

    gframes = load_clips(videos, scale=p["video_scale"], gray=True, max_frames=p["max_frames"])
    cut = p["heldout_from"]

    def pairs(n, seed, span):
        return sample_pairs(gframes, n, p["gray_patch"], seed, p["cut_threshold"], names, span=span)

    sae_x = pairs(p["gray_sae_patches"], p["seed"] + 2, (0.0, cut)).a.reshape(p["gray_sae_patches"], -1)
    with run.timed("grey SAE"):
        gmodel, _ = train_patch_model(
            sae_x,
            p["gray_patch"],
            1,
            p["gray_hidden"],
            p["rho"],
            p["beta"],
            p["decay"],
            p["gray_sae_iters"],
            p["eps_cn"],
            p["eps_zca"],
            p["seed"],
            device,
        )
    ga, gb = pair_codes(pairs(p["invariance_pairs"], p["seed"] + 4, (cut, 1.0)), gmodel, 1000, device)
    held = [(torch.from_numpy(ga).float(), torch.from_numpy(gb).float())]
    parts: dict = {"raw": invariance_parts(ga, gb, p["seed"])}
    gP, costs = {}, {}
    lams = sorted(set(p["lambdas"]) | {p["cluster_lam"]})
    with run.timed("grey P for each lambda and seed"):
        for s in p["grey_seeds"]:
            gtrain = pairs(p["cluster_pairs"], 1000 * s + 3, (0.0, cut))
            for lm in tqdm(lams, desc=f"grey P per lambda (seed {s})", leave=False):
                m, _ = train_autopool(
                    pair_batches(gtrain, gmodel, p["cluster_batch"], device, s),
                    p["cluster_k"],
                    p["gray_hidden"],
                    lm,
                    p["cluster_epochs"],
                    p["cluster_lr"],
                    p["cluster_optimizer"],
                    s,
                    device,
                    init=p["cluster_init"],
                    init_members=p["init_members"],
                    momentum_after=p["momentum_after"],
                    progress=False,
                )
                gP[(s, lm)] = m.P.double().cpu().numpy()
                parts[(s, lm)] = invariance_parts(ga @ gP[(s, lm)].T, gb @ gP[(s, lm)].T, p["seed"])
                if s == p["grey_seeds"][0]:
                    costs[lm] = {
                        "heldout_cost": heldout_cost(m.P, held, lm)["scaled"],
                        "zero_cost": heldout_cost(torch.zeros_like(m.P), held, lm)["scaled"],
                        "onehot_cost": heldout_cost(onehot_P(p["cluster_k"], p["gray_hidden"], s), held, lm)["scaled"],
                    }
            R = shuffled_rows(torch.from_numpy(gP[(s, p["cluster_lam"])]), s).double().numpy()
            parts[(s, "random")] = invariance_parts(ga @ R.T, gb @ R.T, p["seed"])
    return GreyModel(gmodel, gP, parts, gmodel.mean_activation(sae_x), costs)


def grey_invariance_table(grey: GreyModel, p: dict):
    """Fig. 6's numbers: per lambda (and the raw codes, and the row-shuffled control), the invariance score, mean
    over seeds, with its interval over held-out pairs x seeds (:func:`seed_scores`)."""
    import pandas as pd

    from ... import claims as C

    rows = []
    keys = ["raw"] + sorted({lm for (_s, lm) in grey.P}) + ["random"]
    for k in keys:
        items = seed_scores(grey, k, p["grey_seeds"])
        e = C.seed_interval(items, seed=p["seed"], what="held-out pairs")
        code = "raw" if k == "raw" else f"lambda={k:g}" if k != "random" else f"random P (lambda={p['cluster_lam']:g})"
        rows.append({"code": code, "score": e.value, "95% CI": f"[{e.lo:.2f}, {e.hi:.2f}]", "lo": e.lo, "hi": e.hi})
    return pd.DataFrame(rows)


def seed_scores(grey: GreyModel, key, seeds: list[int]) -> np.ndarray:
    """Per held-out pair and seed, the linearised invariance score (:func:`poolrep.metrics.invariance.score_items`),
    pairs x seeds; ``key`` a lambda, ``"random"`` or ``"raw"`` (one column: the raw codes are not trained)."""
    from ...metrics.invariance import score_items

    if key == "raw":
        return score_items(*grey.parts["raw"])[:, None]
    return np.stack([score_items(*grey.parts[(s, key)]) for s in seeds], 1)
