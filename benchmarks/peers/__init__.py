"""Side-by-side runs of nn2mip and peer toolkits (OMLT, PySCIPOpt-ML) on the same instances.

Only benchmarks import the peers; they live in the optional ``bench`` extra.
"""
