"""The terminal's host link: connection to the switch (``connection``), financial message
builders (``financial``) and key handling (``keys``)."""
