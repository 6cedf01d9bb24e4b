"""Search with Optuna: search spaces, study storage (in memory, SQLite, PostgreSQL) and the ``search`` command.

Techniques build on it (hyperparameter tuning in :mod:`harness.techniques.tuning`); nothing here knows pytest.
"""
