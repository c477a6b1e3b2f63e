"""The implementation of ``psycopg3.adapt``: see that module for the public names."""
