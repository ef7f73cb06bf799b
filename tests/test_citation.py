"""CITATION.cff cites the GenView paper as the README's BibTeX does; LICENSE is Apache-2.0."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
AUTHORS = ['Li, Xiaojie', 'Yang, Yibo', 'Li, Xiangtai', 'Wu, Jianlong', 'Yu, Yue',
           'Ghanem, Bernard', 'Zhang, Min']


def test_citation_cff_and_readme_bibtex_cite_the_paper():
    cff = yaml.safe_load((ROOT / 'CITATION.cff').read_text())
    paper = cff['preferred-citation']
    assert (cff['cff-version'], paper['type'], paper['year']) == ('1.2.0', 'conference-paper', 2024)
    assert [f"{a['family-names']}, {a['given-names']}" for a in paper['authors']] == AUTHORS
    assert paper['title'].startswith('GenView: ') and '2403.12003' in paper['url']
    bibtex = re.search(r'```bibtex\n(.*?)```', (ROOT / 'README.md').read_text(), re.S)[1]
    authors = re.search(r'author\s*=\s*\{(.*?)\}', bibtex, re.S)[1]
    assert [a.strip() for a in ' '.join(authors.split()).split(' and ')] == AUTHORS
    assert ' '.join(paper['title'].split()) in ' '.join(bibtex.split())
    assert 'eprint    = {2403.12003}' in bibtex and 'ECCV' in bibtex


def test_licence_is_apache_2_as_setup_py_says():
    text = (ROOT / 'LICENSE').read_text()
    assert 'Apache License\n                           Version 2.0, January 2004' in text
    assert 'END OF TERMS AND CONDITIONS' in text and len(text.splitlines()) > 190
    assert "license='Apache-2.0'" in (ROOT / 'setup.py').read_text()
