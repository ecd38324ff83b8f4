"""Operator settings (environment, prefix QRISK_) and the policy file."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.policy import Policy

DEFAULT_POLICY = Path(__file__).with_name("policy.default.yaml")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QRISK_", extra="ignore")

    data_dir: Path = Path(".qrisk-data")
    host: str = "127.0.0.1"
    port: int = 8080
    policy_file: Path | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch: int = 1000


def load_policy(path: Path | None = None) -> Policy:
    path = path or DEFAULT_POLICY
    with open(path, encoding="utf-8") as fh:
        return Policy.model_validate(yaml.safe_load(fh) or {})
