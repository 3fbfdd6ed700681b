"""SMS replies (SPEC §10): Kannel's hook, keywords into welfare statuses, opt-outs, the inbox."""
