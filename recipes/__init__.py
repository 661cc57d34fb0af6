"""Coordination recipes on the Trio client (work in progress: see the [recipes] issue)."""
