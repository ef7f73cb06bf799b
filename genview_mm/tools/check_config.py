"""``tools/check_config.py`` from the installed package.

    python -m genview_mm.tools.check_config --help
"""
from .runner import tool_main

main = tool_main('check_config')

if __name__ == '__main__':
    main()
