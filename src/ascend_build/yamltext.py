"""YAML text read with libyaml when PyYAML has it (about ten times faster than its pure-Python
loader; the catalogs and the config are read on every build)."""
import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str):
    return yaml.load(text, Loader=SafeLoader)
