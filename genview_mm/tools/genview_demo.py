"""``tools/genview_demo.py`` from the installed package.

    python -m genview_mm.tools.genview_demo --help
"""
from .runner import tool_main

main = tool_main('genview_demo')

if __name__ == '__main__':
    main()
