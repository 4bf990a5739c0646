"""Thin click commands: parse options, call the core, hand results to the reporter."""
