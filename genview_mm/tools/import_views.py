"""``tools/import_views.py`` from the installed package.

    python -m genview_mm.tools.import_views --help
"""
from .runner import tool_main

main = tool_main('import_views')

if __name__ == '__main__':
    main()
