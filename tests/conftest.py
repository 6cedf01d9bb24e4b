"""Settings for the harness's own tests."""

from hypothesis import settings

# No per-example deadline: on a shared 2-core runner a property example that writes a file can take longer than
# Hypothesis's 200 ms default now and then, and a DeadlineExceeded there says nothing about the code.
settings.register_profile("optbench", deadline=None)
settings.load_profile("optbench")
