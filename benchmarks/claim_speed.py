"""Claim-extraction speed against the NLP model's own pipeline on the same texts, on one core.

    python benchmarks/claim_speed.py                 # the 84 PolNeAR dev texts, best of 3 rounds
    python benchmarks/claim_speed.py --rounds 5 DIR  # any directory of .txt files

"Model alone" is the spaCy pipeline exactly as claimwire loads it (same components, lemmatizer
excluded) run over the texts with ``nlp.pipe`` and its default batching, and nothing else; "model in
claimwire's batches" is the same model fed as claimwire feeds it (``ClaimExtractor.parse``, a text at a
time in a memory zone of its own: paragraphs in token-bounded batches, joined back into one Doc); "claimwire" is
``ClaimExtractor.extract_many``: the same model plus every rule stage, producing Claim records. The
three alternate round by round so a slow patch on a shared machine hits all; the best round of each counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POLNEAR = ROOT.parent / "shared" / "eval" / "polnear" / "dev" / "text"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("texts", nargs="?", type=Path, default=POLNEAR)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = sorted(args.texts.glob("*.txt"))
    if not files:
        raise SystemExit(f"no .txt files in {args.texts}")
    texts = [f.read_text(encoding="utf-8") for f in files]
    words = sum(len(t.split()) for t in texts)

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target is stated
    from extractors.claims import ClaimExtractor
    from extractors.claims.nlp import load_nlp

    nlp = load_nlp()
    extractor = ClaimExtractor()
    extractor.extract("Warm-up: the model loads before the clock starts, officials said.")

    def model_alone() -> float:
        start = time.perf_counter()
        with nlp.memory_zone():
            for _ in nlp.pipe(texts):
                pass
        return time.perf_counter() - start

    def model_in_our_batches() -> float:
        start = time.perf_counter()
        for text in texts:  # a text at a time, each in a memory zone of its own, as extract_each does
            with nlp.memory_zone():
                for _ in extractor.parse([text]):  # paragraphs in token-bounded batches, joined back
                    pass
        return time.perf_counter() - start

    def claimwire() -> float:
        start = time.perf_counter()
        extractor.extract_many(texts)
        return time.perf_counter() - start

    model_s, batched_s, claims_s = [], [], []
    for _ in range(args.rounds):
        model_s.append(model_alone())
        batched_s.append(model_in_our_batches())
        claims_s.append(claimwire())
    result = {
        "texts": len(texts),
        "words": words,
        "pipeline": nlp.pipe_names,
        "model_words_per_s": round(words / min(model_s)),
        "claimwire_words_per_s": round(words / min(claims_s)),
        "ratio": round(min(model_s) / min(claims_s), 3),
        "model_in_claimwire_batches_words_per_s": round(words / min(batched_s)),
        "ratio_same_batches": round(min(batched_s) / min(claims_s), 3),
        "rounds_s": {
            "model": [round(s, 2) for s in model_s],
            "model_in_claimwire_batches": [round(s, 2) for s in batched_s],
            "claimwire": [round(s, 2) for s in claims_s],
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
