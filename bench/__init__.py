"""The benchmarks, run as `python bench/X.py`. A package so that an RQ worker imports bench.sms (its no-op
job) and the scripts bench.common the same way."""
