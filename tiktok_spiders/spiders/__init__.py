"""The Research API spiders: ``videos``, ``comments``, ``users``."""
