"""Experiments that combine the stages (each stage stays a module of its own)."""
