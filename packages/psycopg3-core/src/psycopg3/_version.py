"""The version of psycopg3: the one source that every package reads."""

__version__ = "0.1.0.dev0"
