"""What every part of the engine shares and that knows no domain: contact encryption (``crypto``), the bounds
every input is held to (``limits``), the domain exceptions (``errors``), languages (``i18n``), logs (``logs``), what a
per-address limit counts (``network``) and reading the YAML files people edit (``yaml_files``).

May import: nothing else of the engine (the standard library and third-party packages only).
"""
