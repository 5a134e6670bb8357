"""Sparse training and pruning, torch-native, kept in separate concerns (as Torch-Pruning does).

Scoring (how important a weight or neuron is): ``magnitude``, ``structured`` (neuron norms),
``init_pruning`` (SNIP, GraSP, SynFlow). Cutting: ``masks`` (explicit boolean masks that survive
optimizer steps) and ``compact`` (a physically smaller network). Scheduling (how much, when):
``schedules`` (cubic gradual pruning), ``lottery`` (IMP with rewinding), ``dynamic`` (SET,
RigL). Regularization: ``regularizers`` (L1 and group lasso with proximal steps, SPR, ReLU
stability). ``freezing`` trains only parts of a random initialization, or a supermask over it.
``catalogue.run_method`` dispatches by name for the ``nn2mip prune`` command and benchmarks.
"""
