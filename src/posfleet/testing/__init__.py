"""Builders shared by the tests and the demo data: named personas and terminals walked to a state."""
