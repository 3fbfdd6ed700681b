"""Administering users (SPEC §9 ``/console/users``, SPEC §7 ``registry users …``): one place for both."""
