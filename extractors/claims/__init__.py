"""Text → Claims: who asserted what, with which numbers, how hedged.

``ClaimExtractor`` loads the spaCy model once and extracts claims from many texts in one pass.
"""

from extractors.claims.extractor import EXTRACTOR_VERSION, ClaimExtractor, claims_from_doc, extract_claims

__all__ = ["EXTRACTOR_VERSION", "ClaimExtractor", "claims_from_doc", "extract_claims"]
