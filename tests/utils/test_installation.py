"""genview_mm.utils.installation: which command runs a tool from where the user stands."""
import os
import types

from genview_mm.foreground.encoder_check import refit_command
from genview_mm.utils.installation import TOOLS, tool_command
from helpers import ROOT, checkout_root


def test_tool_commands_follow_the_working_folder(tmp_path):
    """The fix lines said ``python tools/X.py`` everywhere; outside the checkout's root (the
    user's own MM project, a wheel) there is no tools/ to run, and a tools/ of another
    project runs another file."""
    assert tool_command('import_views', ROOT) == 'python tools/import_views.py'
    clone = tmp_path / 'clone'
    clone.mkdir()
    assert tool_command('import_views', checkout_root(clone)) == 'python tools/import_views.py'
    assert tool_command('import_views', str(tmp_path)) == 'genview-import-views'
    theirs = tmp_path / 'their_project' / 'tools'
    theirs.mkdir(parents=True)
    (theirs / 'train.py').write_text('print("their train.py")\n')
    assert tool_command('train', str(theirs.parent)) == 'genview-train'
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert [tool_command(name) for name in TOOLS] == list(TOOLS.values())
        encoder = types.SimpleNamespace(name='enc/b', arch=None, input_size=224)
        assert refit_command(encoder) == 'genview-fit-pca IMAGES --encoder enc/b --out PCA.pth'
    finally:
        os.chdir(cwd)
