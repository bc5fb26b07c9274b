"""The benchmark harness's parts; `bench/run.py` puts them together."""
