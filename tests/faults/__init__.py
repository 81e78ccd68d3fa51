"""Fault tests: hostile and malformed inputs, and what the system answers to them."""
