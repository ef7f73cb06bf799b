"""Import pre-generated views (the released GenView variations, or any folder mirroring the
source tree) as a generation manifest, so training can use them (``tools/import_views.py``)."""
from .folder_match import FolderMatch, match_folder, view_extensions
from .importer import import_views
from .level_lists import NoiseLevelLists, level_from_filename, ratio_from_value
from .report import ImportReport, format_report
from .tree_walk import walk_pair

__all__ = ['import_views', 'ImportReport', 'format_report', 'match_folder', 'FolderMatch',
           'view_extensions', 'NoiseLevelLists', 'level_from_filename', 'ratio_from_value',
           'walk_pair']
