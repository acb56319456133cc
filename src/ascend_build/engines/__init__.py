"""Container engines: the only modules that run external programs."""
