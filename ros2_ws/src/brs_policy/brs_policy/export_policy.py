"""`python -m brs_policy.export_policy SRC DST`: a deployable WB-VIMA checkpoint from a training
output (EMA weights, no optimizer state, large weights as float16). Bad input: one line, exit 2."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m brs_policy.export_policy", description=__doc__.splitlines()[0])
    p.add_argument("src", help="policy.pt or checkpoints/last.pt of `brs train`")
    p.add_argument("dst", help="output file, e.g. ros2_ws/src/brs_policy/checkpoints/bimanual_box.pt")
    p.add_argument("--float32", action="store_true", help="keep every weight in float32")
    args = p.parse_args(argv)
    from .wbvima import CheckpointError, export_policy, load_policy

    try:
        out = export_policy(args.src, args.dst, half=not args.float32)
        load_policy(out, device="cpu")  # it loads as a policy
    except CheckpointError as exc:
        print(f"export_policy: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
