"""The benchmark suite: python3 -m bench (make bench). See the README's "Benchmarks"."""
