"""Goroshin et al.'s models and losses (ICLR 2015): the fully connected and convolutional auto-encoders of Eq. 2
(slowness on L2-pooled groups, L1 or group sparsity), DrLIM (Eq. 1), greedy layer-wise training of a two-layer stack,
the supervised network, and the frame pairs they are trained on."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ...features import apply_batched
from ...pooling.group_l2 import GroupL2Pool


class FCAutoEncoder(nn.Module):
    """Fully connected model: ``h = ReLU(W_e x + b)`` (``n_atoms``), reconstruction ``W_d h``, L2 pooling of
    ``group`` consecutive units (512 atoms in groups of 4 -> 128 pooled outputs in the paper)."""

    def __init__(self, in_dim: int = 400, n_atoms: int = 512, group: int = 4):
        super().__init__()
        if n_atoms % group:
            raise ValueError(f"{n_atoms} atoms cannot be split into groups of {group}")
        self.enc = nn.Linear(in_dim, n_atoms)
        self.dec = nn.Linear(n_atoms, in_dim, bias=False)
        self.pool = GroupL2Pool(group, 1)
        self.renorm()

    def encode(self, x):
        if x.ndim != 2 or x.shape[1] != self.enc.in_features:
            raise ValueError(f"expected N x {self.enc.in_features} inputs, got {tuple(x.shape)}")
        return F.relu(self.enc(x))

    def decode(self, h):
        return self.dec(h)

    def pooled(self, h):
        return self.pool.pool_vector(h)

    @torch.no_grad()
    def renorm(self):
        w = self.dec.weight  # in_dim x n_atoms: atom j is column j
        w.div_(w.norm(dim=0, keepdim=True).clamp_min(1e-8))

    def atoms(self) -> torch.Tensor:
        """Decoder atoms, ``n_atoms x in_dim``."""
        return self.dec.weight.detach().T.cpu()


class _ShiftAddDecoder(torch.autograd.Function):
    """``conv_transpose2d(h, w, padding=k // 2)`` at stride 1 ('same' size), forward as one matrix product and
    ``k * k`` shifted adds, backward as torch's own transposed-convolution backward (``aten.convolution_backward``,
    the kernels ``nn.ConvTranspose2d``'s autograd runs). On a CPU torch computes this forward (64 maps -> 3, 9 x 9)
    at about a fifth of its convolution rate, while its backward (a 3 -> 64 convolution and the weight gradient)
    runs near it; the product ``w^T h`` (``(C_out k k) x C_in`` by ``C_in x HW`` per image) then the adds of each
    kernel offset's slice into the padded output run about 3x as fast (issue 44; the stage's speed table times
    both). Same linear map, the sums in another order: equal to float tolerance (``tests/test_slowfeat_speed.py``)."""

    @staticmethod
    def forward(ctx, h, w):
        n, c, H, W = h.shape
        co, k = w.shape[1], w.shape[-1]
        # per image (C_out k k) x C_in by C_in x HW; the weight expanded, not copied (matmul would copy h instead)
        wt = w.reshape(c, -1).T.contiguous().expand(n, -1, -1)
        T = torch.bmm(wt, h.contiguous().reshape(n, c, H * W)).view(n, co, k, k, H, W)
        out = h.new_zeros(n, co, H + k - 1, W + k - 1)
        for dy in range(k):  # input pixel (y, x) adds w[:, :, dy, dx] h[y, x] at padded output (y + dy, x + dx)
            for dx in range(k):  # add_ on the view: ``+=`` on a slice would copy it back once more
                out[:, :, dy : dy + H, dx : dx + W].add_(T[:, :, dy, dx])
        ctx.save_for_backward(h, w)
        p = k // 2
        return out[:, :, p : p + H, p : p + W].contiguous()

    @staticmethod
    def backward(ctx, grad):
        h, w = ctx.saved_tensors
        p = w.shape[-1] // 2
        gh, gw, _ = torch.ops.aten.convolution_backward(
            grad.contiguous(), h, w, None, [1, 1], [p, p], [1, 1], True, [0, 0], 1,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False],
        )  # fmt: skip
        return gh, gw


def decode_same(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``F.conv_transpose2d(h, w, padding=k // 2)`` for an odd ``k x k`` kernel ``w`` (``C_in x C_out x k x k``),
    computed by :class:`_ShiftAddDecoder`: the auto-encoders' decoder."""
    if w.ndim != 4 or w.shape[-1] != w.shape[-2] or w.shape[-1] % 2 == 0 or h.ndim != 4 or h.shape[1] != w.shape[0]:
        raise ValueError(
            f"decode_same needs maps N x C_in x H x W and an odd square kernel C_in x C_out x k x k, got "
            f"{tuple(h.shape)} and {tuple(w.shape)}"
        )
    return _ShiftAddDecoder.apply(h, w)


DECODERS = ("shifted adds", "ConvTranspose2d")  # how ConvAutoEncoder's decoder runs its forward: the same map
SHIFTED_ADDS_MAX_MAPS = 4  # measured (issue 44): 3 output maps, shifted adds faster; 16, the module faster


def default_decoder(maps: int) -> str:
    """How a decoder back to ``maps`` maps runs its forward by default (:data:`DECODERS`)."""
    return DECODERS[0] if maps <= SHIFTED_ADDS_MAX_MAPS else DECODERS[1]


class ConvAutoEncoder(nn.Module):
    """One convolutional layer: ``h = ReLU(conv(x))`` with ``n_filters`` ``kernel x kernel`` filters ('same'
    padding), decoder ``conv(h)`` back to ``in_ch`` maps, L2 pooling over ``group`` maps and ``pool x pool`` space.
    Layer 1 of the paper: 3 -> 64 filters 9x9, group 4, pool 2 (32x32 -> 16x16x16); layer 2: 16 -> 64 filters 5x5,
    group 1, pool 4 (-> 64x4x4).

    The decoder is held as a ``ConvTranspose2d`` whose kernel is the decoding convolution's kernel transposed
    (``n_filters x in_ch``) and flipped: the same linear map (``conv2d(h, W) = conv_transpose2d(h, W^T flipped)``
    at stride 1 with 'same' padding), initialised from the same ``Conv2d`` draw; its backward pass runs about twice as
    fast on a CPU. Atom ``j`` is then ``dec.weight[j]``: the patch one unit of map ``j`` adds to the reconstruction,
    the right way up.

    ``decoder`` says how the decoder's forward runs: ``"shifted adds"`` (:func:`decode_same`) or
    ``"ConvTranspose2d"`` (the module); by default the first where the output has at most
    :data:`SHIFTED_ADDS_MAX_MAPS` maps (layer 1's 3 colours: its step 1.4x as fast), the module otherwise (layer 2's
    16 maps: the module's step is 1.2x as fast). The stage's speed table times both on both layers."""

    def __init__(self, in_ch: int, n_filters: int, kernel: int, group: int, pool: int, decoder: str | None = None):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError("use an odd kernel so 'same' padding keeps the map size")
        if decoder is None:
            decoder = default_decoder(in_ch)
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; one of {DECODERS}")
        self.decoder = decoder
        self.enc = nn.Conv2d(in_ch, n_filters, kernel, padding=kernel // 2)
        drawn = nn.Conv2d(n_filters, in_ch, kernel, padding=kernel // 2, bias=False).weight  # in_ch x n_filters x k x k
        self.dec = nn.ConvTranspose2d(n_filters, in_ch, kernel, padding=kernel // 2, bias=False)
        with torch.no_grad():
            self.dec.weight.copy_(drawn.transpose(0, 1).flip(2, 3))
        self.pool = GroupL2Pool(group, pool)
        self.renorm()

    def encode(self, x):
        if x.ndim != 4 or x.shape[1] != self.enc.in_channels:
            raise ValueError(f"expected N x {self.enc.in_channels} x H x W inputs, got {tuple(x.shape)}")
        return F.relu(self.enc(x))

    def decode(self, h):
        return decode_same(h, self.dec.weight) if self.decoder == DECODERS[0] else self.dec(h)

    def pooled(self, h):
        return self.pool.pool_map(h)

    def features(self, x):
        """Pooled maps (the next layer's input and, flattened, the descriptor)."""
        return self.pooled(self.encode(x))

    @torch.no_grad()
    def renorm(self):
        w = self.dec.weight  # n_filters x in_ch x k x k: atom j is w[j]
        w.div_(w.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-8))

    def atoms(self) -> torch.Tensor:
        """Decoder atoms ``n_filters x in_ch x k x k``."""
        return self.dec.weight.detach().cpu()


def _sum_per_sample(t):
    return t.flatten(1).sum(1)


def slow_loss(model, x1, x2, alpha: float, beta: float, sparsity: str = "l1"):
    """Eq. 2, averaged over the batch. Returns ``(loss, parts)`` with the mean reconstruction, sparsity and
    slowness terms (before weighting)."""
    if x1.shape != x2.shape:
        raise ValueError(f"frame pairs differ in shape: {tuple(x1.shape)} vs {tuple(x2.shape)}")
    if sparsity not in ("l1", "group"):
        raise ValueError(f"unknown sparsity {sparsity!r}; use 'l1' or 'group'")
    B = len(x1)
    x = torch.cat([x1, x2])  # both frames of every pair in one batch: one convolution per layer, not two
    h = model.encode(x)
    m = model.pooled(h)
    # L1 of h is its sum: h is a ReLU's output (>= 0), and the ReLU's backward zeroes the gradient wherever h = 0,
    # so |h| and h give the same loss and the same gradients; the sum skips abs() and its backward (issue 44)
    rec, sp = _sum_per_sample((model.decode(h) - x) ** 2), _sum_per_sample(h if sparsity == "l1" else m)
    rec, sp = rec[:B] + rec[B:], sp[:B] + sp[B:]
    slow = _sum_per_sample((m[:B] - m[B:]).abs())
    loss = (rec + alpha * sp + beta * slow).mean()
    return loss, {"rec": rec.mean().item(), "sparsity": sp.mean().item(), "slow": slow.mean().item()}


def drlim_loss(za, zp, zn, margin: float):
    """Eq. 1, averaged over anchors: ``za``, ``zp`` are ``B x D``, ``zn`` ``B x M x D`` (M negatives each)."""
    za, zp = za.flatten(1), zp.flatten(1)
    if zn.ndim < 3 or zn.shape[0] != za.shape[0]:
        raise ValueError(f"negatives must be B x M x ..., got {tuple(zn.shape)} for B={za.shape[0]}")
    zn = zn.flatten(2)
    pos = (za - zp).pow(2).sum(1)
    dn = (za[:, None, :] - zn).pow(2).sum(2).clamp_min(1e-12).sqrt()
    neg = F.relu(margin - dn).pow(2).sum(1)
    return (pos + neg).mean(), {"pos": pos.mean().item(), "neg": neg.mean().item()}


@dataclass
class TrainCfg:
    steps: int = 200
    batch: int = 32
    lr: float = 1e-3
    alpha: float = 0.0
    beta: float = 0.0
    sparsity: str = "l1"
    margin: float = 1.0
    negatives: int = 5
    seed: int = 0
    keep_every: int = 0  # > 0: keep the model's state every this many steps (the AUC-against-steps curve)


def to_chw(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x 3 -> float32 N x 3 x H x W in [0, 1]."""
    if images_uint8.ndim != 4 or images_uint8.shape[-1] != 3:
        raise ValueError(f"expected N x H x W x 3 colour images, got {images_uint8.shape}")
    return np.ascontiguousarray(images_uint8.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def temporal_pairs(scene: np.ndarray) -> np.ndarray:
    """All index pairs ``(t, t+1)`` of consecutive frames inside the same scene: ``P x 2``."""
    scene = np.asarray(scene)
    t = np.flatnonzero(scene[:-1] == scene[1:])
    return np.stack([t, t + 1], 1)


def random_negatives(scene: np.ndarray, anchors: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``len(anchors) x m`` random frame indices, each from a scene other than its anchor's."""
    scene = np.asarray(scene)
    if len(np.unique(scene)) < 2:
        raise ValueError("negatives need at least two scenes")
    out = rng.integers(0, len(scene), size=(len(anchors), m))
    bad = scene[out] == scene[anchors][:, None]
    while bad.any():
        out[bad] = rng.integers(0, len(scene), size=int(bad.sum()))
        bad = scene[out] == scene[anchors][:, None]
    return out


def patch_pairs(frames_gray: np.ndarray, scene: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n x 2 x size*size`` patches cut at the same place of two consecutive frames of a scene; each patch
    has its mean removed and the set is scaled to unit standard deviation."""
    if frames_gray.ndim != 3:
        raise ValueError(f"expected grey frames N x H x W, got {frames_gray.shape}")
    pairs = temporal_pairs(scene)
    if not len(pairs):
        raise ValueError("no consecutive frames in a scene")
    H, W = frames_gray.shape[1:]
    if size > min(H, W):
        raise ValueError(f"patch {size} larger than frames {H}x{W}")
    pick = pairs[rng.integers(0, len(pairs), n)]
    ys, xs = rng.integers(0, H - size + 1, n), rng.integers(0, W - size + 1, n)
    out = np.empty((n, 2, size * size), np.float32)
    for i, ((a, b), y, x) in enumerate(zip(pick, ys, xs)):
        out[i, 0] = frames_gray[a, y : y + size, x : x + size].ravel()
        out[i, 1] = frames_gray[b, y : y + size, x : x + size].ravel()
    out -= out.mean(axis=2, keepdims=True)
    out /= out.std() + 1e-8
    return out


def ae_step(model, opt, x1, x2, cfg: TrainCfg) -> dict:
    """One Adam step of Eq. 2 on a minibatch of frame pairs, then the decoder's atoms back to unit norm; returns the
    loss and its parts (``slow_loss``). The step that ``train_autoencoder`` repeats and the speed table times."""
    loss, parts = slow_loss(model, x1, x2, cfg.alpha, cfg.beta, cfg.sparsity)
    opt.zero_grad()
    loss.backward()
    opt.step()
    model.renorm()
    return {"loss": loss.item(), **parts}


def drlim_step(encode, opt, batch: torch.Tensor, n_pairs: int, negatives: int, margin: float) -> dict:
    """One Adam step of Eq. 1: ``batch`` holds the ``n_pairs`` anchors, their positives, then ``negatives``
    frames per anchor (anchor-major), encoded in one pass."""
    z = encode(batch)
    B = n_pairs
    loss, parts = drlim_loss(z[:B], z[B : 2 * B], z[2 * B :].reshape(B, negatives, *z.shape[1:]), margin)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return {"loss": loss.item(), **parts}


def supervised_step(model, opt, x: torch.Tensor, y: torch.Tensor) -> float:
    """One Adam step of cross-entropy on a minibatch; returns the loss."""
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def train_autoencoder(model, data, pairs, cfg: TrainCfg, device="cpu", desc="slow AE"):
    """Adam on Eq. 2 over random minibatches of ``pairs`` (``P x 2`` indices into ``data``, a float tensor).
    ``data`` may also be ``P x 2 x D`` pair-major (then ``pairs`` is None). Returns the loss history."""
    g = torch.Generator().manual_seed(cfg.seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    hist = []
    n = len(data) if pairs is None else len(pairs)
    for _ in tqdm(range(cfg.steps), desc=desc, leave=False):
        b = torch.randint(0, n, (cfg.batch,), generator=g)
        if pairs is None:
            x1, x2 = data[b, 0], data[b, 1]
        else:
            p = pairs[b.numpy()]
            x1, x2 = data[p[:, 0]], data[p[:, 1]]
        hist.append(ae_step(model, opt, x1.to(device), x2.to(device), cfg))
        if cfg.keep_every and len(hist) % cfg.keep_every == 0:
            hist[-1]["state"] = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    return hist


def train_drlim(encode, params, data, scene, cfg: TrainCfg, device="cpu", desc="DrLIM", pairs=None):
    """Adam on Eq. 1: anchors/positives from ``pairs`` (default: consecutive frames of a scene), ``cfg.negatives``
    random frames of other scenes per anchor. ``encode`` maps a batch to codes."""
    if cfg.negatives < 1:
        raise ValueError("DrLIM needs at least one negative per positive")
    rng = np.random.default_rng(cfg.seed)
    pairs = temporal_pairs(scene) if pairs is None else pairs
    opt = torch.optim.Adam(params, lr=cfg.lr)
    hist = []
    for _ in tqdm(range(cfg.steps), desc=desc, leave=False):
        p = pairs[rng.integers(0, len(pairs), cfg.batch)]
        neg = random_negatives(scene, p[:, 0], cfg.negatives, rng)
        idx = np.concatenate([p[:, 0], p[:, 1], neg.ravel()])
        hist.append(drlim_step(encode, opt, data[idx].to(device), len(p), cfg.negatives, cfg.margin))
    return hist


def layer_specs(n_filters1=64, kernel1=9, group1=4, pool1=2, n_filters2=64, kernel2=5, group2=1, pool2=4):
    """The two layers' shapes; the defaults are the paper's (4,096-d and 1,024-d pooled outputs at 32x32)."""
    return (
        {"n_filters": n_filters1, "kernel": kernel1, "group": group1, "pool": pool1},
        {"n_filters": n_filters2, "kernel": kernel2, "group": group2, "pool": pool2},
    )


def train_greedy(x, scene, specs, cfgs, method="slow", device="cpu", in_ch=3):
    """Greedy layer-wise training of a two-layer stack on frames ``x`` (N x C x H x W float tensor).

    ``method``: ``"slow"`` (Eq. 2 with each cfg's alpha/beta/sparsity) or ``"drlim"`` (Eq. 1 on the pooled
    codes of the same encoders). Layer 2 is trained on layer 1's pooled maps of the (frozen) first layer.
    Returns the list of trained layers and their loss histories.
    """
    if method not in ("slow", "drlim"):
        raise ValueError(f"unknown method {method!r}; use 'slow' or 'drlim'")
    layers, hists = [], []
    inp, ch = x, in_ch
    pairs = temporal_pairs(scene)
    for li, (spec, cfg) in enumerate(zip(specs, cfgs)):
        # each (seed, layer) its own stream: seed + li made seed s's layer 2 start as seed s+1's layer 1
        cfg = replace(cfg, seed=cfg.seed * 1000 + li)
        torch.manual_seed(cfg.seed)
        layer = ConvAutoEncoder(ch, spec["n_filters"], spec["kernel"], spec["group"], spec["pool"]).to(device)
        if method == "slow":
            h = train_autoencoder(layer, inp, pairs, cfg, device, desc=f"{method} layer {li + 1}")
        else:
            layer.train()
            h = train_drlim(
                layer.features, list(layer.enc.parameters()), inp, scene, cfg, device, desc=f"{method} layer {li + 1}"
            )
        layer.eval()
        layers.append(layer)
        hists.append(h)
        inp = apply_batched(layer.features, inp, device=device)
        ch = inp.shape[1]
    return layers, hists


def stack_features(layers, x, device="cpu") -> list[torch.Tensor]:
    """Flattened pooled features of each layer of a stack (``[N x D1, N x D2, ...]``), computed on ``device`` (each
    layer is moved there: a stack rebuilt from a worker's state lives on the cpu)."""
    out, inp = [], x
    for layer in layers:
        layer.to(device)
        inp = apply_batched(layer.features, inp, device=device)
        out.append(inp.flatten(1))
    return out


class SupervisedNet(nn.Module):
    """The supervised comparison: "a four layer ConvNet with supervised training on CIFAR-10. The architecture of
    the first two stages of the ConvNet is identical to the architecture of the first and second unsupervised
    stages" (Sec. 5): two conv + ReLU + L2-pooling stages shaped like the unsupervised stack, then two fully
    connected layers (``hidden`` ReLU units, then the classes; the paper does not give the last two layers' shapes,
    this is our reading)."""

    def __init__(self, specs=None, n_classes: int = 10, in_ch: int = 3, size: int = 32, hidden: int = 256):
        super().__init__()
        specs = layer_specs() if specs is None else specs
        self.stages = nn.ModuleList()
        ch, s = in_ch, size
        for spec in specs:
            conv = nn.Conv2d(ch, spec["n_filters"], spec["kernel"], padding=spec["kernel"] // 2)
            self.stages.append(nn.ModuleDict({"conv": conv, "pool": GroupL2Pool(spec["group"], spec["pool"])}))
            ch, s = spec["n_filters"] // spec["group"], s // spec["pool"]
        self.fc = nn.Sequential(nn.Linear(ch * s * s, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    @property
    def n_layers(self) -> int:
        return len(self.stages) + sum(isinstance(m, nn.Linear) for m in self.fc)

    def stage_features(self, x) -> list[torch.Tensor]:
        out = []
        for st in self.stages:
            x = st["pool"].pool_map(F.relu(st["conv"](x)))
            out.append(x)
        return out

    def forward(self, x):
        return self.fc(self.stage_features(x)[-1].flatten(1))


def train_supervised(model, x, y, steps: int, batch: int, lr: float, seed: int = 0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = []
    for _ in tqdm(range(steps), desc="supervised", leave=False):
        b = torch.randint(0, len(x), (batch,), generator=g)
        hist.append(supervised_step(model, opt, x[b].to(device), y[b].to(device)))
    model.eval()
    return hist
