"""Encrypted backups of the whole service: its database and its keys (``registry backup`` / ``registry restore``).

``format``: the encrypted file (AES-256-GCM in framed chunks); ``database``: pg_dump and pg_restore around it;
``services``: what the two commands do.
"""
