"""The studio's pages: thin views over :mod:`apps.studio.logic`, one ``render()`` each."""
