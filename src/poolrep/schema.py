"""What each stage's parameters may be: one pydantic model per params.yaml block (issue 48, item 4).

``config.resolve`` checks a stage's effective parameters (its block overlaid by the profile's sub-block) against
its model before anything else happens, so ``poolrep run``, ``poolrep backbone``, ``poolrep data`` and
``poolrep params`` refuse a bad value before any data is read. The models are written out by hand, every range
stated: a count (pixels, images per class, steps, epochs, pairs, batches, iterations, filters) is an int > 0, a seed
an int >= 0, a list of seeds non-empty, a fraction a number in [0, 1], a weight, rate or margin a number >= 0
(> 0 where 0 would make no sense: learning rates, temperatures). ``null`` is allowed only where a profile uses it
("all", "no cut", "the registry's file"), and ``"auto"`` only where it is decided at run time. Every key is
required and no other key is accepted: adding a parameter means adding it here too. A stage made by ``poolrep new``
has its model in its own package, ``papers/<stage>/params.py`` (class ``Params``), which :data:`MODELS` takes in.

A refusal is one :class:`config.ParamsError` line naming the stage, the key, the value and what is allowed, e.g.
``autopool.n_pairs = 0 (profile cpu): Input should be greater than 0; allowed: an int > 0``.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

PROFILES = ("smoke", "cpu", "paper")

# ---- the building blocks, each with its range stated ----
Count = Annotated[int, Field(gt=0)]  # sizes, steps, epochs, batches, per-class counts: > 0
NonNeg = Annotated[int, Field(ge=0)]  # seeds, offsets
Seed = NonNeg
Seeds = Annotated[list[Seed], Field(min_length=1)]
Counts = Annotated[list[Count], Field(min_length=1)]
Weight = Annotated[float, Field(ge=0)]  # weights, thresholds, margins, regularisers: >= 0
Weights = Annotated[list[Weight], Field(min_length=1)]
Rate = Annotated[float, Field(gt=0)]  # learning rates, temperatures, scales: > 0
Rates = Annotated[list[Rate], Field(min_length=1)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Auto = Literal["auto"]
Name = Annotated[str, Field(min_length=1)]
Names = Annotated[list[Name], Field(min_length=1)]
Net = Literal["mobilenet_v2", "alexnet"]
Optimizer = Literal["adam", "momentum", "sgd"]
Init = Literal["dense", "onehot", "sparse"]
RecallBase = Literal["all", "top_k"]
Pooling = Literal[
    "gap", "gmp", "attention", "entropy_linear", "entropy_softmax", "entropy_unnormalised", "entropy_detached"
]


class StageParams(BaseModel):
    """Every stage: strict types (no "5" for 5, no true for 1, an int is accepted for a number), no unknown key, no
    NaN or infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    profile: Literal["smoke", "cpu", "paper"]
    seed: Seed


class Backbone(StageParams):
    net: Net
    input_px: Count
    train_per_class: Count
    test_per_class: Count
    batch_size: Count
    extract_procs: Count | Auto


class Autopool(StageParams):
    hidden: Count
    patch: Count
    sae_patches: Count
    sae_iters: Count
    rho: Annotated[float, Field(gt=0, lt=1)]
    beta: Weight
    decay: Weight
    eps_cn: Weight
    eps_zca: Weight
    video_scale: Annotated[float, Field(gt=0, le=1)]
    max_frames: Count | None
    cut_threshold: Weight
    heldout_from: Annotated[float, Field(gt=0, lt=1)]
    heldout_pairs: Count
    n_pairs: Count
    curve_every: Count
    curve_pairs: Counts
    batch_pairs: Count
    batch_pairs_check: Count | None
    train_procs: Count
    init: Init
    optimizer: Optimizer
    lr: Rate
    momentum_after: NonNeg
    lam: Weight
    init_members: Count | None
    ks: Counts
    seeds: Seeds
    train_sets: Annotated[list[Literal["full", "small"]], Field(min_length=1)]
    rep_side: Annotated[int, Field(gt=5)] | None  # D = hidden x (rep_side - 5)^2
    rep_ks: Counts
    rep_seeds: Seeds
    rep_pairs: Count
    grid_start_pairs: Count
    cost_lambdas: Weights
    cost_grids: Counts
    sp_grids: Annotated[list[Counts], Field(min_length=1)]
    train_full: Count
    train_small: Count
    test_per_class: Count
    svm_C_grid: Rates
    cv_folds: Annotated[int, Field(ge=2)]
    feature_batch: Count
    gray_patch: Count
    gray_hidden: Count
    gray_sae_patches: Count
    gray_sae_iters: Count
    cluster_k: Count
    cluster_pairs: Count
    cluster_epochs: Count
    cluster_batch: Count
    cluster_init: Init
    cluster_optimizer: Optimizer
    cluster_lr: Rate
    cluster_lam: Weight
    grey_seeds: Seeds
    lambdas: Weights
    inv_lambdas: Annotated[list[Weight], Field(min_length=3, max_length=3)]  # low, large, top
    stop_rise_frac: Fraction
    invariance_pairs: Count
    cluster_threshold: Fraction

    @model_validator(mode="after")
    def _nested(self):
        if self.train_small > self.train_full:
            raise ValueError(
                f"train_small = {self.train_small} exceeds train_full = {self.train_full}: the small set is "
                f"nested in the full one (allowed: train_small <= train_full)"
            )
        return self


class Slowfeat(StageParams):
    seeds: Seeds
    train_procs: Count
    train_videos: Names
    test_videos: Names
    video_folder: Name | None
    max_frames: Count | None
    frame_step: Count
    cut_threshold: Weight
    scene_min: Count
    scene_max: Count
    segment_gap: Count | Auto
    image_size: Count
    zca_eps: Rate
    zca_fit_per_class: Count
    n_filters1: Count
    kernel1: Count
    group1: Count
    pool1: Count
    n_filters2: Count
    kernel2: Count
    group2: Count
    pool2: Count
    steps1: Count
    steps2: Count
    batch: Count
    lr: Rate
    alpha: Weight
    beta: Weight
    group_alpha: Weight
    margin: Weight
    negatives: Count
    drlim_lr: Rate
    drlim_steps: Count
    fc_patch: Count
    fc_atoms: Count
    fc_group: Count
    fc_pairs: Count
    fc_steps: Count
    fc_batch: Count
    fc_alphas: Weights
    fc_beta: Weight
    fc_frame_width: Count
    sup_train_per_class: Count
    sup_steps: Count
    sup_batch: Count
    sup_hidden: Count
    class_train_per_class: Count
    class_test_per_class: Count
    class_k: Count
    temporal_k: Count
    temporal_recall_base: RecallBase
    class_recall_base: RecallBase
    no_gain_margin: Weight
    plateau_window: Fraction
    plateau_tol: Weight
    keep_every: Count
    stability_checkpoints: Count
    toy_n: Count
    toy_step_deg: Rate
    toy_size: Count
    toy_hidden: Count
    toy_steps: Count
    toy_batch: Count
    toy_margin: Weight

    @model_validator(mode="after")
    def _consistent(self):
        if self.scene_min > self.scene_max:
            raise ValueError(f"scene_min = {self.scene_min} exceeds scene_max = {self.scene_max}")
        for k in ("steps1", "steps2"):
            if getattr(self, k) % self.keep_every:
                raise ValueError(
                    f"keep_every = {self.keep_every} does not divide {k} = {getattr(self, k)} "
                    f"(allowed: a divisor of steps1 and steps2)"
                )
        return self


class Pyramid(StageParams):
    net: Net
    weights_file: Name | None
    input_px: Count
    batch_size: Count
    datasets: Annotated[
        list[Literal["pairs", "video", "cifar10", "holidays", "holidays_rotated", "oxford5k"]], Field(min_length=1)
    ]
    descriptors: Names
    pyramids: dict[str, Names]
    pairs_max_side: Count
    video_step: Count
    video_max_frames: Count | None
    video_threshold: Weight
    video_min_len: Count
    video_max_len: Count
    video_segment_gap: Count | Auto
    video_gap: Count | Auto
    video_queries: Literal["all", "middle"]
    cifar_train_per_class: Count
    cifar_test_per_class: Count
    holidays_root: Name | None
    holidays_max_side: Count
    holidays_limit: Count | None
    oxford_root: Name | None
    oxford_crop_query: bool
    oxford_max_side: Count
    show_descriptor: Name
    show_queries: Count
    top_k: Count


class Crosslayer(StageParams):
    dataset: Literal["cifar10", "cub200"]
    crop_box: bool
    cub_archive: Name | None
    backbone: Net
    weights_file: Name | None
    layer_t: Name
    layer_t1: Name
    global_layer: Name
    train_per_class: Count | None
    test_per_class: Count | None
    input_px: Count
    input_px_fine: Count
    window: Count
    pca_dim: Count
    pca_dims: Counts
    pca_max_samples: Count
    svm_Cs: Rates
    quant_bits: Counts
    quant_claim_bits: Count
    quant_margin: Weight
    batch_size: Count
    n_weight_maps: Count


class Entropy(StageParams):
    seeds: Seeds
    poolings: Annotated[list[Pooling], Field(min_length=1)]
    cifar_poolings: Annotated[list[Pooling], Field(min_length=1)]
    temperature: Rate
    cifar_train_per_class: Count
    cifar_test_per_class: Count
    curve_test_per_class: Count
    widths: Counts
    blocks: Count
    stem_stride: Count
    epochs: Count
    eval_every: Count
    batch_size: Count
    lr: Rate
    label_smoothing: Fraction
    weight_decay: Weight
    control_factor: Count
    control_poolings: list[Pooling]
    control_seeds: list[Seed]
    train_procs: Count
    group_seeds: bool = False
    compile_grouped: bool = False
    head_train_per_class: Count
    head_test_per_class: Count
    head_epochs: Count
    head_batch_size: Count
    head_lr: Rate
    head_lr_grid: list[Rate]
    head_val_fraction: Annotated[float, Field(gt=0, lt=1)]
    head_loss_factor: Rate
    head_weight_decay: Weight
    head_dropout: Annotated[float, Field(ge=0, lt=1)]
    n_show: Count
    loc_per_class: Count
    canvas: Annotated[int, Field(ge=32)]  # the object is 32 x 32

    @model_validator(mode="after")
    def _subset(self):
        extra = sorted(set(self.control_seeds) - set(self.seeds))
        if extra:
            raise ValueError(
                f"control_seeds = {self.control_seeds} has {extra}, not in seeds = {self.seeds} "
                f"(allowed: a subset of seeds)"
            )
        return self


class Zoo(StageParams):
    input_px: Count
    probe_alphas: Rates
    gem_p: Rate
    l2_group: Count
    l2_kernel: Count
    windows: Names
    autopool_k: Count
    autopool_lam: Weight
    autopool_pairs: Count
    autopool_epochs: Count
    autopool_lr: Rate
    autopool_batch: Count
    cross_pca_dim: Count
    cross_pca_samples: Count
    entropy_t: Rate
    extra_operators: list[Name | dict[str, Any]]  # "module:Class" or {class:, kwargs:, id:} (papers/zoo.py)


MODELS: dict[str, type[StageParams]] = {
    "backbone": Backbone,
    "autopool": Autopool,
    "slowfeat": Slowfeat,
    "pyramid": Pyramid,
    "crosslayer": Crosslayer,
    "entropy": Entropy,
    "zoo": Zoo,
}


def _scaffolded() -> dict[str, type[StageParams]]:
    """The models of the stages ``poolrep new`` made: ``papers/<stage>/params.py``, class ``Params``.

    Each lives in its paper's package, not here, so that adding a paper changes no file every stage depends on
    (this module is one): it reruns no other stage. The file is loaded by its path (its package's ``__init__`` is
    not run) and may import only this module, which is complete up to here."""
    out: dict[str, type[StageParams]] = {}
    for f in sorted((Path(__file__).parent / "papers").glob("*/params.py")):
        stage, name = f.parent.name, f"poolrep.papers.{f.parent.name}.params"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, f)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # pydantic resolves the annotations in the module's namespace
            spec.loader.exec_module(module)
        model = getattr(module, "Params", None)
        if not (isinstance(model, type) and issubclass(model, StageParams)):
            raise TypeError(f"{f}: defines no class Params(StageParams)")
        if stage in MODELS:
            raise TypeError(f"{f}: {stage!r} has its model in poolrep.schema already")
        out[stage] = model
    return out


MODELS.update(_scaffolded())


class TopLevel(BaseModel):
    """The keys of params.yaml that are not a stage's block."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    profile: Literal["smoke", "cpu", "paper"]
    verify_rtol: Annotated[float, Field(ge=0, lt=1)]  # poolrep verify: a value moved beyond this relative change


# ---- "what is allowed", in words, from a field's annotation ----

_BOUND_WORDS = ((at.Gt, ">", "gt"), (at.Ge, ">=", "ge"), (at.Lt, "<", "lt"), (at.Le, "<=", "le"))


def _flat(metadata) -> list:
    """Constraints, with pydantic's ``Field(...)`` objects (inside a nested ``Annotated``) opened up."""
    out = []
    for m in metadata:
        out += _flat(m.metadata) if isinstance(m, FieldInfo) else [m]
    return out


def _bounds(metadata) -> tuple[str, str]:
    """(value bounds, list length) in words: ``("in [0, 1]", "")``, ``("", "non-empty")``."""
    lo = hi = None
    n_min = n_max = None
    for m in _flat(metadata):
        for cls, word, attr in _BOUND_WORDS:
            if isinstance(m, cls):
                if word.startswith(">"):
                    lo = (word, getattr(m, attr))
                else:
                    hi = (word, getattr(m, attr))
        if isinstance(m, at.MinLen):
            n_min = m.min_length
        if isinstance(m, at.MaxLen):
            n_max = m.max_length
    value = ""
    if lo and hi:
        value = f"in {'[' if lo[0] == '>=' else '('}{lo[1]}, {hi[1]}{']' if hi[0] == '<=' else ')'}"
    elif lo or hi:
        value = f"{(lo or hi)[0]} {(lo or hi)[1]}"
    length = ""
    if n_min == n_max and n_min is not None:
        length = f"of exactly {n_min}"
    elif n_min == 1 and n_max is None:
        length = "non-empty"
    elif n_min is not None or n_max is not None:
        length = f"of {n_min or 0} to {n_max if n_max is not None else 'any number of'}"
    return value, length


def describe(tp: Any, metadata: tuple | list = ()) -> str:
    """What a type annotation allows, in words: ``Count | None`` -> ``an int > 0 or null``."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        return describe(base, [*metadata, *meta])
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is Literal:
        vals = typing.get_args(tp)
        return repr(vals[0]) if len(vals) == 1 else "one of " + ", ".join(repr(v) for v in vals)
    value, length = _bounds(metadata)
    if origin is list:
        (item,) = typing.get_args(tp)
        if length.startswith("of "):
            return f"a list {length} items, each {describe(item)}"
        return f"a {length + ' ' if length else ''}list, each item {describe(item)}"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"a mapping, each key {describe(k)} and each value {describe(v)}"
    if tp is str:
        return "a non-empty string" if length == "non-empty" else "a string"
    name = {int: "an int", float: "a number", bool: "true or false", Any: "anything"}.get(tp, str(tp))
    return f"{name} {value}".strip()


def allowed(model: type[BaseModel], key: str) -> str:
    f = model.model_fields[key]
    return describe(f.annotation, f.metadata)


def _item_path(value: Any, loc: tuple) -> list:
    """The list indices and mapping keys of ``loc`` that lead into ``value`` (pydantic also names the branch of a
    union it tried, ``constrained-int``, ``literal['auto']``: those are dropped)."""
    path = []
    for part in loc:
        if isinstance(part, int) and isinstance(value, list) and 0 <= part < len(value):
            value = value[part]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            continue
        path.append(part)
    return path


def _at(value: Any, path: list) -> Any:
    for p in path:
        value = value[p]
    return value


def error_line(stage: str, model: type[BaseModel], params: dict, error: dict) -> str:
    """One line from a pydantic error: the stage, the key, the value and what is allowed."""
    loc = tuple(error.get("loc", ()))
    profile = params.get("profile")
    where = f" (profile {profile})" if profile in PROFILES else ""
    msg = error.get("msg", "invalid").removeprefix("Value error, ")
    if not loc:  # a check across keys (model_validator)
        return f"{stage}{where}: {msg}"
    key = str(loc[0])
    if error.get("type") == "extra_forbidden":
        return (
            f"{stage}.{key} = {params.get(key)!r}{where}: unknown key; {stage!r} accepts: "
            f"{', '.join(sorted(k for k in model.model_fields if k != 'profile'))}"
        )
    if error.get("type") == "missing":
        return f"{stage}.{key} is missing{where}; allowed: {allowed(model, key)}"
    value = params.get(key)
    path = _item_path(value, loc[1:])
    inner = f" (item {''.join(f'[{p!r}]' for p in path)} = {_at(value, path)!r})" if path else ""
    return f"{stage}.{key} = {value!r}{where}{inner}: {msg}; allowed: {allowed(model, key)}"


def check(stage: str, params: dict[str, Any]) -> None:
    """Raise ``config.ParamsError`` (one line) unless ``params`` (a stage's effective parameters, ``profile``
    included) fit the stage's model. A stage without a model passes (``config.validate`` covers it)."""
    from .config import ParamsError

    model = MODELS.get(stage)
    if model is None:
        return
    try:
        model.model_validate(params)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        line = error_line(stage, model, params, errors[0])
        more = len({err["loc"][:1] for err in errors}) - 1  # a union's branches each report: one key, one problem
        if more:
            line += f" (and {more} more key(s) of this block)"
        raise ParamsError(line) from None


def check_top(doc: dict[str, Any]) -> None:
    """The keys of params.yaml outside the stages' blocks: ``profile`` and ``verify_rtol``."""
    from .config import ParamsError

    top = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    try:
        TopLevel.model_validate(top)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        key = str(err["loc"][0]) if err.get("loc") else "?"
        if err.get("type") == "extra_forbidden":
            raise ParamsError(
                f"params.yaml: unknown top-level key {key} = {top.get(key)!r}; top-level keys: "
                f"{', '.join(TopLevel.model_fields)} and the stages' blocks"
            ) from None
        what = allowed(TopLevel, key) if key in TopLevel.model_fields else "?"
        raise ParamsError(f"params.yaml: {key} = {top.get(key)!r}: {err['msg']}; allowed: {what}") from None
