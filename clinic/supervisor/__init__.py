"""The town supervisor's side: a store of many clinics' audit bundles, anomaly rules, reports.

Nothing here runs on a clinic PC; it reads only what the bundles carry (keyed hashes, never a
patient's name or number)."""
