"""Message campaigns to the exposed of a crisis (SPEC §10): audience, templates, sending, delivery reports."""
