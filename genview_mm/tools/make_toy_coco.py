"""``tools/make_toy_coco.py`` from the installed package.

    python -m genview_mm.tools.make_toy_coco --help
"""
from .runner import tool_main

main = tool_main('make_toy_coco')

if __name__ == '__main__':
    main()
