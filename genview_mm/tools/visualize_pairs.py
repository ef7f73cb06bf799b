"""``tools/visualize_pairs.py`` from the installed package.

    python -m genview_mm.tools.visualize_pairs --help
"""
from .runner import tool_main

main = tool_main('visualize_pairs')

if __name__ == '__main__':
    main()
