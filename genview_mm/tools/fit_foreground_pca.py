"""``tools/fit_foreground_pca.py`` from the installed package.

    python -m genview_mm.tools.fit_foreground_pca --help
"""
from .runner import tool_main

main = tool_main('fit_foreground_pca')

if __name__ == '__main__':
    main()
