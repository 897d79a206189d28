"""Authentication (JWT) and per-store authorization, decided before storage is touched."""

from stratasync.auth.access import AccessControl, Action, Hooks, default_authorize
from stratasync.auth.tokens import TokenVerifier

__all__ = ["AccessControl", "Action", "Hooks", "TokenVerifier", "default_authorize"]
