"""Settings of the Lambda functions, read from the environment once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Settings(BaseModel):
    """Environment variables ``STRATASYNC_*`` (see the README's configuration table)."""

    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    dynamodb_endpoint: str | None = None
    storage_time_budget_seconds: float = Field(default=5.0, gt=0, le=25)
    pull_response_bytes: int = Field(default=4_500_000, ge=1_000_000, le=5_500_000)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``STRATASYNC_<FIELD>`` variables; a readable error names what is missing or wrong."""
        environ = os.environ if environ is None else environ
        values = {
            name: environ[f"STRATASYNC_{name.upper()}"]
            for name in cls.model_fields
            if environ.get(f"STRATASYNC_{name.upper()}")
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(
                f"STRATASYNC_{'.'.join(map(str, item['loc'])).upper()}: {item['msg']}"
                for item in error.errors()
            )
            raise RuntimeError(f"stratasync is misconfigured: {problems}") from None
