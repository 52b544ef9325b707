"""Optional compiled code for plasmite-core: ``plasmite_core.framescan`` uses
``_frames``, ``plasmite_core.pool`` uses ``_pool``, ``plasmite_core.envelope``
uses ``_message`` and ``plasmite_core.stream`` uses ``_stream`` when they were
built and ``PLASMITE_PURE`` is not set."""
