"""``tools/make_semi_subsets.py`` from the installed package.

    python -m genview_mm.tools.make_semi_subsets --help
"""
from .runner import tool_main

main = tool_main('make_semi_subsets')

if __name__ == '__main__':
    main()
