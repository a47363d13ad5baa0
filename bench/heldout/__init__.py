"""Held-out evaluation sets for the pii, relations and anomalies agents.

Written by someone other than the detectors' author, before reading the detectors' rules or
the agents' own benchmark generators: only the public signatures, the docs and the issue.
The cases follow schemas and data as found in the wild (e-commerce, HR, healthcare, SaaS
events, flights), with fixed seeds, and include traps of our own. A label that is genuinely
debatable is kept in the set with its reason and left out of the scoring.
"""
