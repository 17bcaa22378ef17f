"""Pure extraction stages: bytes and text in, typed records out. No network, no database, no Prefect."""
