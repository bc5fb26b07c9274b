"""Pure rules: no framework, driver or database (the import contracts hold them to it)."""
