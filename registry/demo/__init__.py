"""The demo: generated data (``data``) and the ``registry demo`` command that loads it (``commands``)."""
