"""Benchmarks of a whole reporting day at city, province and country scale (make bench, docs/PERFORMANCE.md)."""
