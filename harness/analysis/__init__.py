"""What an optimization costs beyond latency: the interpretability, drift and cost suites over the variants the
other suites make. Plain library code below :mod:`harness.analysis.plugin` (the pytest part); importing the
package loads nothing heavy."""
