"""``tools/test.py`` from the installed package.

    python -m genview_mm.tools.test --help
"""
from .runner import tool_main

main = tool_main('test')

if __name__ == '__main__':
    main()
