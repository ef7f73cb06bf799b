"""``tools/merge_manifests.py`` from the installed package.

    python -m genview_mm.tools.merge_manifests --help
"""
from .runner import tool_main

main = tool_main('merge_manifests')

if __name__ == '__main__':
    main()
