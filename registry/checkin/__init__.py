"""Self check-in and self-registration during a crisis (SPEC §10): the public pages, their links, the
verification queue."""
