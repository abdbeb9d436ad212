"""The PySide6 desktop app: the only package that imports Qt; it calls the same services as the CLI."""
