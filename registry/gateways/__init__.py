"""The gateways messages leave and arrive by (SPEC §10): Kannel for SMS, SMTP for email."""
