"""Optional compiled loops for plasmite-core; ``plasmite_core.framescan`` picks
them up when ``_frames`` was built and ``PLASMITE_PURE`` is not set."""
