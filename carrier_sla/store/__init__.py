"""The store: its layout, locking, staging, publication and verification."""
