"""Benchmarks: pushorch beside ansible-core and pyinfra on the same loopback hosts."""
