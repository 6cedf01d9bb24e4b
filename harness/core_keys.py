"""Code hashes for cache keys that a refactor which computes the same thing does not invalidate.

Cache keys hold the source hash of the code that makes the cached thing (:func:`harness.cache.source_hash`), so
editing a module retrains what it made. A change that moves plumbing only (where memos live, which context is
passed) computes the same weights; :data:`SAME_AS` maps such a module's hash *as it is now* to the hash its keys
were made with, so the cache survives it. The next edit of that module changes its hash, the entry stops
matching, and keys change as they always did: an entry can keep a key only for the exact source it names.
"""

from __future__ import annotations

import inspect

from harness.cache import source_hash

# module name → {hash of a source that computes the same: the hash its cache keys were made with}
SAME_AS: dict[str, dict[str, str]] = {
    # issue #19: memos moved into the run's context, Expectation imported from harness.core, code_hash for
    # source_hash, tuning through the shared training path (same arms, keys and figures). Where a second hash is
    # listed, it is the module with the report's technique declarations (report_section / report_figures class
    # attributes, which no weight depends on) added beside those changes.
    "model_zoo.training": {"3eaf48c8ec284eacf0e2": "5e305100a77a58f9babf"},
    "harness.techniques.training": {"663a06ba07a31c9da0cc": "842755003c0f13e471b6"},
    "harness.techniques.tuning": {"2554f52e53533e044320": "f6c2c8ad5ef46cd44f45"},
    "harness.techniques.pruning": {"267da204aad2e5c76ff4": "3804d1e22944ff198fda",
                                   "5f49d50cfc3ea38eeaee": "3804d1e22944ff198fda"},
    "harness.techniques.dataset_distillation": {"4f4c8f7ba79497cc3d82": "0bfcefbdda14b9164497",
                                                "9a23594c29c9a67a801c": "0bfcefbdda14b9164497"},
    "harness.techniques.augmentation": {"ce99d249ec21f84f3d92": "f42ad1258f4cd4645ed7",
                                        "28dc701804a3a329a2f7": "f42ad1258f4cd4645ed7"},
    "harness.techniques.early_stopping": {"e791881973933b141af4": "d45defb6e058b3087214",
                                          "ae8f9598d14a639cfe65": "d45defb6e058b3087214"},
    "harness.techniques.gradient_clipping": {"4e1ab26a5afd384944d4": "f4ef870a3770841190f0",
                                             "628a095a1b3a2ce2a280": "f4ef870a3770841190f0"},
    "harness.techniques.distillation": {"699410edefd5f2fc30fa": "1557124d9e33c3ebe989",
                                        "176f7872e1f0e83ac904": "1557124d9e33c3ebe989"},
    # the analysis suites' code key: run.py takes the session's context (and hashes through kept)
    "harness.analysis.run": {"3cecc611c6b99f435418": "5554b86d5c64b0e36bfd"},
}


def code_hash(obj: object, same_as: dict[str, dict[str, str]] | None = None) -> str:
    """:func:`~harness.cache.source_hash` of ``obj``'s module, or the hash its keys were made with where
    ``same_as`` (default :data:`SAME_AS`) says the module's current source computes the same."""
    module = inspect.getmodule(obj)
    return kept(module.__name__ if module else "", source_hash(obj), same_as)


def kept(module: str, digest: str, same_as: dict[str, dict[str, str]] | None = None) -> str:
    """``digest``, the source hash of ``module``, or the hash its keys were made with (see :data:`SAME_AS`)."""
    return (same_as if same_as is not None else SAME_AS).get(module, {}).get(digest, digest)
