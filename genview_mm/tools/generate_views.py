"""``tools/generate_views.py`` from the installed package.

    python -m genview_mm.tools.generate_views --help
"""
from .runner import tool_main

main = tool_main('generate_views')

if __name__ == '__main__':
    main()
