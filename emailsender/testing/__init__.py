"""Test doubles that are real servers (a fake SendGrid), shared by tests, development and benchmarks,
and what the sender's and the web's tests share: a test broker, a TCP proxy, polling."""
