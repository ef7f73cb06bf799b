"""``tools/train.py`` from the installed package.

    python -m genview_mm.tools.train --help
"""
from .runner import tool_main

main = tool_main('train')

if __name__ == '__main__':
    main()
