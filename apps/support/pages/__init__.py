"""The support bot's page: a thin view over apps.support's modules."""
