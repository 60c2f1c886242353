"""Config group ``async_mode``: settings an asynchronous trainer mode needs on a given machine (a package so the YAML ships in wheels)."""
