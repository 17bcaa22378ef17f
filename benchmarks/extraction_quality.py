"""Main-text extraction quality on the article-extraction-benchmark pages in ../shared/eval/aeb.

Scored the way that benchmark scores (word 4-gram shingles, per-page normalised TP/FP/FN,
macro precision and recall, F1 of the two). Usage:

    python benchmarks/extraction_quality.py [--eval-dir ../shared/eval/aeb] [--method NAME]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_TOKEN = re.compile(r"\w+", re.UNICODE)


def shingle_counts(text: str, n: int = 4) -> Counter:
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n])


def tp_fp_fn(true: str, pred: str) -> tuple[float, float, float]:
    t, p = shingle_counts(true), shingle_counts(pred)
    tp = sum(min(t[k], p[k]) for k in t.keys() | p.keys())
    fp = sum(max(0, p[k] - t[k]) for k in p)
    fn = sum(max(0, t[k] - p[k]) for k in t)
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def macro_scores(rows: list[tuple[float, float, float]]) -> dict[str, float]:
    def precision(tp, fp, fn):
        return 1.0 if fp == fn == 0 else (0.0 if tp == fp == 0 else tp / (tp + fp))

    def recall(tp, fp, fn):
        return 1.0 if fp == fn == 0 else (0.0 if tp == fn == 0 else tp / (tp + fn))

    p = statistics.mean(precision(*r) for r in rows if r[0] + r[1] > 0)
    r = statistics.mean(recall(*r) for r in rows if r[0] + r[2] > 0)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-dir", default=str(Path(__file__).resolve().parents[2] / "shared/eval/aeb"))
    parser.add_argument("--method", default="claimwire", help="claimwire | trafilatura | precision | readability")
    args = parser.parse_args()
    from extractors import article

    root = Path(args.eval_dir)
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    rows, methods, seconds = [], Counter(), 0.0
    for key, record in sorted(truth.items()):
        raw = gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes())
        html = article.decode_html(raw)
        start = time.perf_counter()
        if args.method == "claimwire":
            text, method = article.extract_main_text(html)
        elif args.method == "readability":
            text, method = article._readability_text(html), "readability"
        else:
            import trafilatura

            text = (
                trafilatura.extract(
                    html, favor_precision=args.method == "precision", include_comments=args.method != "precision"
                )
                or ""
            )
            method = args.method
        seconds += time.perf_counter() - start
        methods[method] += 1
        rows.append(tp_fp_fn(record.get("articleBody", ""), text))
    scores = macro_scores(rows)
    print(json.dumps({"pages": len(rows), **scores, "methods": methods, "pages_per_s": len(rows) / seconds}))
    print(
        f"aeb: F1={scores['f1']:.3f} P={scores['precision']:.3f} R={scores['recall']:.3f} "
        f"pages/s={len(rows) / seconds:.1f}"
    )


if __name__ == "__main__":
    main()
