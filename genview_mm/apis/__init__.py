"""What the tools call (as mmdetection's ``apis``): application code above the library.

Modules here import from the layers below (``structures``, ``generation``, ``models``, ...)
and nothing below imports them.
"""
