"""``tools/import_official_pca.py`` from the installed package.

    python -m genview_mm.tools.import_official_pca --help
"""
from .runner import tool_main

main = tool_main('import_official_pca')

if __name__ == '__main__':
    main()
