"""`ferminet generate`: sample new networks from a learned generator and verify them."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="sample verified networks from a learned generator",
                              description="Sample one network per seed from a gensynth run's learned generator, take "
                                          "its weights from the run's supernet, convert it to int8, evaluate it on "
                                          "the run's validation split, measure it on the run's target and keep the "
                                          "ones that meet the run's requirements (RUN/generated/). With --finalize "
                                          "each also gets the run's final training (as its finals: --final-epochs, "
                                          "else the prototype's epochs) and is reported on the test split. The "
                                          "seeds give different networks: a seed whose first draw is an earlier "
                                          "seed's architecture draws again from its own random stream until it has "
                                          "a new one (printed).")
    p.add_argument("run_dir", metavar="RUN", help="the --out folder of a gensynth `ferminet synthesize` run")
    p.add_argument("--seeds", default="1-5", help="seeds, e.g. 1-5 or 3,7,9 (default 1-5)")
    p.add_argument("--finalize", action="store_true",
                   help="final-train every sampled network and judge the requirements on it")
    p.add_argument("--db", default=None, help="results store (default: the run's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.cli.cmd_synthesize import print_candidates
    from toolkit.synthesis import generate

    result = generate(args.run_dir, args.seeds, args.db, finalize=args.finalize, progress=args.finalize)
    print_candidates(list(result.sampled) + (list(result.networks) if args.finalize else []))
    for cid, n in result.redraws:
        print(f"{cid}: its first {n - 1} draw{'s' if n > 2 else ''} gave networks of earlier seeds; its draw {n} is "
              f"new")
    for first in dict.fromkeys(first for _, first in result.repeats):
        again = [cid for cid, earlier in result.repeats if earlier == first]
        print(f"{', '.join(again)}: the same architecture as {first} (evaluated once)")
    hashes = {n.spec_hash for n in result.passing}
    what = "final-trained networks" if args.finalize else "sampled networks (proxy, validation split)"
    print(f"{len(result.passing)} of {len(result.networks)} {what} meet the requirements "
          f"({len(hashes)} distinct architectures); files in {result.out_dir}")
    return 0 if result.passing else 1
