"""Work counted, not timed: instructions per inference under Valgrind's Callgrind, and the work gate's baseline.

``counter`` runs the Callgrind workers (``worker.py``) and caches their figures; ``jobs`` turns a case's artifact
into a job; ``figures`` reads the dumps; ``baseline`` keeps the accepted counts per counting environment.
Nothing here is imported by the worker beyond ``figures``: keep this package's ``__init__`` empty of imports.
"""
