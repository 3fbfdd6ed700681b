"""Migration-profile statistics (SPEC §11): stocks and flows in common codes, with disclosure control."""
