"""The PySide6 desktop app: the only package that imports Qt; it calls the CLI's services."""
