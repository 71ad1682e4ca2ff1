"""Baseline senders, each run as its own process by the harness (bench/session.py)."""
