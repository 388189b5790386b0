"""The studio's pages: thin views over the studio's modules, one ``render()`` each."""
