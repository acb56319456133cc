"""Air-gapped transfer: `save` writes images into one verifiable archive, `load` checks every
byte of it before anything reaches an engine or a registry."""
