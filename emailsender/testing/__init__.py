"""Test doubles that are real servers (a fake SendGrid), shared by tests, development and benchmarks."""
