"""Shared fixtures. Stage-specific helpers live in their own modules under tests/."""
