"""Optional compiled code for plasmite-core: ``plasmite_core.framescan`` uses
``_frames`` and ``plasmite_core.pool`` uses ``_pool`` when they were built and
``PLASMITE_PURE`` is not set."""
