"""``tools/convert_checkpoint.py`` from the installed package.

    python -m genview_mm.tools.convert_checkpoint --help
"""
from .runner import tool_main

main = tool_main('convert_checkpoint')

if __name__ == '__main__':
    main()
