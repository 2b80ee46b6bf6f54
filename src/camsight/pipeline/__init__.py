"""Stages wired together: source -> motion gate -> detector -> tracker -> builder -> store."""
