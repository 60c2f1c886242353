"""Config group ``hardware``: cpu | cuda (a package so the YAML ships in wheels)."""
