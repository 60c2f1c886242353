"""Version-guarded patches of verl internals, one module each, each with a test that fails when
the verl code it relies on changes (tests/unit/test_patches_on_cpu.py)."""
