"""python -m effgan.evaluate --checkpoint RUN [--data NAME] [--fid-weights PATH] [--json OUT]"""
from __future__ import annotations

import argparse
import sys

from effgan.evaluate.checkpoint_eval import EvaluationOptions, evaluate_checkpoint
from effgan.evaluate.report import check_writable, format_table, write_json


def build_parser() -> argparse.ArgumentParser:
    defaults = EvaluationOptions()
    p = argparse.ArgumentParser(prog="python -m effgan.evaluate", description=__doc__)
    p.add_argument("--checkpoint", required=True, help="Run directory or checkpoint file.")
    p.add_argument("--which", default=defaults.which,
                   help="Checkpoint file in the run directory: latest or best (as in sample and translate), or "
                        "a file name such as latest-step400.pt (default: %(default)s).")
    p.add_argument("--data", default=None, help="Dataset name or folder (default: the run's dataset).")
    p.add_argument("--fid-weights", default=None,
                   help="Local FID InceptionV3 weights (pt_inception-2015-12-05 state_dict); never downloaded. "
                        "Without it FID/KID use a small FeatureNet trained on the run's data.")
    p.add_argument("--max-items", type=int, default=defaults.max_items,
                   help="Test items to evaluate (default: the run's --eval-items, 200 unless it set one).")
    p.add_argument("--feature-train-items", type=int, default=defaults.feature_train_items,
                   help="Training images the FeatureNet / classifier learn from (default: the run's "
                        "--eval-train-items, 1000 unless it set one).")
    p.add_argument("--feature-steps", type=int, default=defaults.feature_steps,
                   help="FeatureNet training steps (default: the run's --eval-train-steps, 300 unless it set one).")
    p.add_argument("--classifier-steps", type=int, default=defaults.classifier_steps,
                   help="Score classifier training steps, cgan with --fid-weights (default: the run's "
                        "--eval-train-steps, 300 unless it set one).")
    p.add_argument("--c2st-steps", type=int, default=defaults.c2st_steps,
                   help="Training steps of the two-sample-test classifier; 0 skips C2ST (default: %(default)s).")
    p.add_argument("--kid-subsets", type=int, default=defaults.kid_subsets,
                   help="Random subsets KID averages over (default: %(default)s).")
    p.add_argument("--kid-subset-size", type=int, default=defaults.kid_subset_size,
                   help="Items per KID subset (at most the items evaluated) (default: %(default)s).")
    p.add_argument("--seed", type=int, default=defaults.seed,
                   help="Seed of the generated items, the subsets and the learned feature networks (default: %(default)s).")
    p.add_argument("--device", default=defaults.device,
                   help=f"auto, cpu, cuda or cuda:N (default: {defaults.device}).")
    p.add_argument("--json", default=None, help="Write the results to this JSON file.")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.json is not None:
            check_writable(args.json)  # before minutes of evaluation, not after
        which = f"{args.which}.pt" if args.which in ("latest", "best") else args.which
        options = EvaluationOptions(
            data=args.data, which=which, max_items=args.max_items, feature_train_items=args.feature_train_items,
            fid_weights=args.fid_weights, feature_steps=args.feature_steps, classifier_steps=args.classifier_steps,
            c2st_steps=args.c2st_steps, kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
            seed=args.seed, device=args.device)
        result = evaluate_checkpoint(args.checkpoint, options)
    except ValueError as error:
        print(f"effgan.evaluate: error: {error}", file=sys.stderr)
        return 2
    title = (f"{result['model']} step {result['step']} ({result['checkpoint']})\n"
             f"FID/KID extractor: {result['extractor']}")
    print(format_table(result["metrics"], title=title))
    if args.json:
        try:
            write_json(result, args.json)
        except OSError as error:
            print(f"effgan.evaluate: error: --json {args.json!r} could not be written ({error})", file=sys.stderr)
            return 1
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
