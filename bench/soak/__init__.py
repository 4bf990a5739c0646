"""The fault soak: random faults at random moments of real runs on a lab of its own, invariants after each.

    python -m bench.soak [--faults N] [--seed S] [--only K] [--hosts 3] [--dir DIR] [--keep]

world.py brings up the lab and runs the controller; faults.py injects and heals each fault;
invariants.py samples what serves during a run and checks the hosts at rest. docs/reliability.md.
"""
