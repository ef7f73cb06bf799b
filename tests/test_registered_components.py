"""Every component genview_mm registers into an OpenMMLab registry is built by a named test.

Registering a new model, transform, hook, ... makes :func:`test_every_component_has_a_test`
fail until its name is added to :data:`BUILT_BY` with the tests that build it; each test named
there must exist.
"""
import ast
import importlib
import os.path as osp
import pkgutil
import re
from typing import Dict, List, Set, Tuple

from helpers import ROOT

# registered name -> tests (node ids without parameters) that build it and check what it does
BUILT_BY: Dict[str, List[str]] = {
    'GenViewMoCo': [
        'tests/models/test_genview_algorithms.py::test_trains_with_finite_loss_and_upstream_keys',
        'tests/models/test_genview_algorithms.py::test_unit_weights_reproduce_upstream_loss',
        'tests/models/test_genview_algorithms.py::test_head_wrapped_once_and_scorer_optional'],
    'GenViewMoCoV3': [
        'tests/models/test_genview_algorithms.py::test_trains_with_finite_loss_and_upstream_keys',
        'tests/models/test_genview_algorithms.py::test_gradients_reach_ssl_model_never_clip'],
    'GenViewBYOL': [
        'tests/models/test_genview_algorithms.py::test_trains_with_finite_loss_and_upstream_keys',
        'tests/models/test_genview_algorithms.py::test_unit_weights_reproduce_upstream_loss'],
    'GenViewSimSiam': [
        'tests/models/test_genview_algorithms.py::test_trains_with_finite_loss_and_upstream_keys',
        'tests/datasets/test_configs.py::test_config_builds_and_runs_a_loss_step'],
    'GenViewSimCLR': [
        'tests/models/test_genview_algorithms.py::test_simclr_weights_both_rows_of_each_pair',
        'tests/models/test_quality_weights_dist.py::test_simclr_two_processes_global_weights'],
    'GenViewSwAV': [
        'tests/models/test_genview_algorithms.py::test_swav_weights_each_sample_across_all_crops'],
    'QualityDrivenContrastiveHead': [
        'tests/models/test_quality_driven_head.py::test_unit_weights_equal_wrapped_head',
        'tests/models/test_quality_driven_head.py::test_weighted_loss_is_mean_of_weighted_rows'],
    'PairQualityScorer': [
        'tests/models/test_pair_quality_scorer.py::test_tiny_clip_through_transformers',
        'tests/models/test_pair_quality_scorer.py::'
        'test_scorer_converts_normalisation_and_matches_reference'],
    'CLIPPatchEncoder': [
        'tests/foreground/test_clip_patch_encoder.py::test_tokens_match_hf_model'],
    'TimmPatchEncoder': [
        'tests/models/test_patch_encoders.py::test_timm_adapter_tokens_and_metadata',
        'tests/models/test_patch_encoders.py::test_real_timm_convnext_tower'],
    'AdaptiveNoiseGenerator': [
        'tests/generation/test_adaptive_noise_generator.py::test_order_and_metadata'],
    'GenViewPairDataset': [
        'tests/datasets/test_genview_pair.py::test_generated_view_in_random_slot_about_half',
        'tests/datasets/test_released_views.py::'
        'test_partial_coverage_training_data_hook_warning_and_levels'],
    'GenViewPairHook': [
        'tests/datasets/test_genview_pair.py::'
        'test_hook_reports_coverage_and_rejects_mismatched_manifest',
        'tests/datasets/test_released_views.py::'
        'test_partial_coverage_training_data_hook_warning_and_levels'],
    'CPUDistributedDataParallel': [
        'tests/engine/test_launch.py::test_ddp_on_cpu_turns_a_necks_default_sync_bn_into_bn',
        'tests/engine/test_train_tools.py::test_dist_train_two_cpu_processes'],
    'KNNMonitorHook': [
        'tests/evaluation/test_eval_knn.py::test_hook_evaluate_logs_to_message_hub',
        'tests/evaluation/test_eval_knn.py::test_gather_across_ranks'],
}


def registered_components() -> Dict[str, Set[Tuple[str, str]]]:
    """Name -> {(scope, registry)} of every registry entry whose class or function comes from
    genview_mm, after importing all of genview_mm's modules (MMEngine's root registries and
    every child: MMPretrain's, MMDetection's)."""
    import mmdet.registry  # noqa: F401  (its registries become children of MMEngine's)
    import mmengine.registry as roots
    from mmengine.registry import Registry

    import genview_mm
    for info in pkgutil.walk_packages(genview_mm.__path__, 'genview_mm.'):
        importlib.import_module(info.name)
    registries, todo = {}, [r for r in vars(roots).values() if isinstance(r, Registry)]
    while todo:
        registry = todo.pop()
        if id(registry) not in registries:
            registries[id(registry)] = registry
            todo.extend(registry.children.values())
    found: Dict[str, Set[Tuple[str, str]]] = {}
    for registry in registries.values():
        for name, obj in registry.module_dict.items():
            if getattr(obj, '__module__', '').split('.')[0] == 'genview_mm':
                found.setdefault(name, set()).add((registry.scope, registry.name))
    return found


def test_every_component_has_a_test():
    found = registered_components()
    missing = sorted(set(found) - set(BUILT_BY))
    assert not missing, (f'registered without a test: {missing}; write tests that build them and '
                         f'name those tests in BUILT_BY ({__file__})')
    stale = sorted(set(BUILT_BY) - set(found))
    assert not stale, f'BUILT_BY names components that are no longer registered: {stale}'
    # the known components are where configs look for them
    assert found['GenViewMoCo'] == {('mmpretrain', 'model')}
    assert found['GenViewPairDataset'] == {('mmpretrain', 'transform')}
    assert found['KNNMonitorHook'] == {('mmpretrain', 'hook')}


def source_with_helpers(path: str) -> Tuple[str, Set[str]]:
    """The text of the test file ``path`` (relative to the repository) followed by the test-only
    modules it imports (those next to it or in tests/), and the names of its test functions."""
    with open(osp.join(ROOT, path)) as f:
        text = f.read()
    tree = ast.parse(text)
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    for module in sorted(modules):
        for folder in (osp.dirname(path), 'tests'):
            helper = osp.join(ROOT, folder, module.replace('.', '/') + '.py')
            if osp.isfile(helper):
                with open(helper) as f:
                    text += f.read()
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return text, functions


def test_the_named_tests_exist_and_name_their_component():
    for name, node_ids in BUILT_BY.items():
        assert node_ids, name
        texts = []
        for node_id in node_ids:
            path, function = node_id.split('::')
            text, functions = source_with_helpers(path)
            assert function in functions, f'{node_id} (named for {name}) does not exist'
            texts.append(text)
        # by its registered name in a config dict, or the class itself
        assert any(re.search(rf'\b{name}\b', t) for t in texts), \
            f'none of the tests named for {name} (or their helpers) mention it'
