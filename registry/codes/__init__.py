"""Common codes (SPEC §11): the code lists and the harmonisation of what agencies write."""
