"""``tools/sample_extra_images.py`` from the installed package.

    python -m genview_mm.tools.sample_extra_images --help
"""
from .runner import tool_main

main = tool_main('sample_extra_images')

if __name__ == '__main__':
    main()
