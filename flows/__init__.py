"""Prefect flows, their tasks, the HTTP fetcher and the ``claimwire`` command."""
