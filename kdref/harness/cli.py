"""The ``train`` and ``demo`` subcommands of the ``kdref`` command.

``kdref.cli`` calls :func:`add_subcommands` on its subparsers; each subcommand sets ``run`` (its handler, taking the
parsed namespace and returning an exit code), as ``kdref check`` does.
"""

from __future__ import annotations

import argparse
import json

from .methods import METHODS

__all__ = ["add_subcommands", "config_from_args", "run_demo", "run_train"]


def _train_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and models")
    g.add_argument("--method", choices=METHODS, default="hinton", help="distillation method (default hinton)")
    g.add_argument("--data", choices=("digits", "synthetic", "cifar10", "cifar100"), default="digits")
    g.add_argument("--data-root", help="folder with the CIFAR python pickles (cifar10/cifar100)")
    g.add_argument("--data-fraction", type=float, default=1.0, help="stratified fraction of the training split")
    g.add_argument(
        "--synthetic",
        type=json.loads,
        default={},
        metavar="JSON",
        help='make_synthetic keywords, e.g. \'{"num_classes": 40, "n_train": 2000}\'',
    )
    g.add_argument(
        "--student", default=None, help="student model spec (mlp:W,..., cnn:C,..., resnet8x4); default by data"
    )
    g.add_argument("--teacher", default=None, help="teacher model spec (default by data: mlp:256,256 / resnet32x4)")
    g.add_argument("--teacher-checkpoint", help="a teacher state_dict (torch.save) to use instead of training one")
    g.add_argument("--teacher-epochs", type=int)
    g.add_argument("--teacher-seed", type=int, default=0)
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help="default: 40 (digits, synthetic), 240 (CIFAR); x3 for vanillakd")
    g.add_argument("--batch-size", type=int, default=128, help="global batch size (split over processes)")
    g.add_argument(
        "--lr", type=float, default=None, help="Adam learning rate, cosine decay to 0 (default 1e-2; CIFAR 1e-3)"
    )
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--augment", choices=("none", "basic", "strong"), help="default: the method's recipe (basic)")
    g.add_argument("--mixup", action=argparse.BooleanOptionalAction, default=None, help="default: the method's recipe")
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("method options (default: the method's preset)")
    g.add_argument("--temperature", type=float, help="T (hinton, dkd, vanillakd), tau (dist, deit soft), t (funmatch)")
    g.add_argument("--beta", type=float, help="DKD's beta")
    g.add_argument("--warmup-epochs", type=int, help="DKD warm-up epochs (preset 20; 0 = none)")
    g.add_argument("--distillation", choices=("hard", "soft"), default="hard", help="deit: kind of distillation head")
    g.add_argument("--teacher-mode", choices=("consistent", "fixed", "independent"), help="funmatch's teacher view")
    g.add_argument(
        "--dist-intra",
        choices=("global", "local"),
        default="global",
        help="DIST under torchrun: intra-class term over the global batch or per process",
    )
    g.add_argument("--simkd-factor", type=int, default=2, help="SimKD projector bottleneck factor")
    g = p.add_argument_group("running")
    g.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    g.add_argument("--amp", choices=("auto", "on", "off"), default="auto", help="bf16 autocast (auto: on CUDA)")
    g.add_argument("--out", dest="out_dir", default="runs/kdref", help="output folder: metrics.jsonl, checkpoint.pt...")
    g.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    g.add_argument("--stop-after", type=int, help="stop after this epoch (resume later with --resume)")
    g.add_argument("--eval-every", type=int, default=1, help="evaluate every N epochs (0: only at the end)")
    g.add_argument("--cache", help="teacher cache folder (default $KDREF_CACHE or ~/.cache/kdref)")
    g.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None)
    g.add_argument("--no-plot", dest="plot", action="store_false")
    g.add_argument("--quiet", action="store_true")


def config_from_args(args: argparse.Namespace):
    """A :class:`~kdref.harness.train.TrainConfig` from parsed ``train`` arguments (model defaults by dataset)."""
    from .train import TrainConfig

    cifar = args.data.startswith("cifar")
    names = {f.name for f in __import__("dataclasses").fields(TrainConfig)}
    kw = {k: v for k, v in vars(args).items() if k in names and v is not None}
    kw.setdefault("student", "resnet8x4" if cifar else "mlp:32")
    kw.setdefault("teacher", "resnet32x4" if cifar else "mlp:256,256")
    if cifar:
        kw.setdefault("lr", 1e-3)
    return TrainConfig(**kw)


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``kdref train``."""
    from .train import train

    result = train(config_from_args(args))
    return 0 if result.get("completed_epochs") else 1


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``kdref demo``."""
    from .demo import demo

    demo(out_dir=args.out_dir, tiny=args.tiny, cache=args.cache, seed=args.seed, methods=args.methods)
    return 0


def add_subcommands(subparsers) -> None:
    """Add ``train`` and ``demo`` to an ``argparse`` subparsers object; each sets ``run=handler`` as its default."""
    train = subparsers.add_parser(
        "train",
        help="distil a student with one method (digits by default; torchrun for several processes)",
        description="Train a student from a cached teacher with a kdref method. Under torchrun it uses DDP "
        "(gloo on CPU, NCCL on GPUs).",
    )
    _train_arguments(train)
    train.set_defaults(run=run_train)
    demo = subparsers.add_parser(
        "demo", help="distil a small student with every method on the embedded digits and print a table"
    )
    demo.add_argument("--out", dest="out_dir", default="runs/demo", help="folder for results.json and the plot")
    demo.add_argument("--cache", help="teacher cache folder (default $KDREF_CACHE or ~/.cache/kdref)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--methods", nargs="+", choices=METHODS, help="a subset of the methods")
    demo.add_argument("--tiny", action="store_true", help="a few epochs only (smoke test)")
    demo.set_defaults(run=run_demo)
