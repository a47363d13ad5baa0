"""The second held-out set: pii, relations and anomalies cases written blind (bench_heldout2.py)."""
