"""Global test configuration: float64 by default, headless matplotlib, hypothesis profiles.

Tests that need float32 use the `float32` fixture (a context that disables x64).
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci", max_examples=25, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "nightly", max_examples=500, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a test extra; only property tests need it
    pass


# The slow tier: `make test` runs everything; `make test-fast` (pytest -m "not slow") leaves out
# these, the longest tests (measured with `pytest --durations`), for quick runs while developing.
# A file name marks every test of the file; a node id without parameters every case of one test,
# with parameters one case. Tests may also carry @pytest.mark.slow themselves.
SLOW = (
    # whole files: notebooks, property-based and fuzz tests, kernel builds, subprocess legs
    "test_notebooks.py",
    "test_notebooks_analysis.py",
    "test_properties.py",
    "test_fused_fuzz.py",
    "test_fuzz_loaders.py",
    "test_kernel_cache.py",
    "test_large_runs.py",
    "test_no_kernel.py",
    "test_sharding.py",
    # single tests of several seconds each (compilation of ExpRK4, Diffrax, reverse mode, fits)
    "test_analysis_cycles.py::test_period_gradient_matches_fd",
    "test_analysis_cycles.py::test_cycle_branch_down_to_the_fold",
    "test_analysis_hopf.py::test_hopf_gradient_wrt_gK_matches_fd",
    "test_chunked.py::test_chunked_peak_memory_is_flat_as_steps_grow_tenfold",
    "test_diffrax.py::test_population_modes_agree_and_record",
    "test_diffrax.py::test_adjoint_gradients_match_fd",
    "test_exp_integrators.py::test_convergence_order",
    "test_exp_integrators.py::test_exp_rk4_keeps_every_spike_at_dt_01_and_is_accurate",
    "test_fit_data.py::test_cli_fit_round_trip",
    "test_fit_loop.py::test_multistart_recovers_conductances_from_noisy_trace",
    "test_fit_loop.py::test_forward_and_reverse_mode_steps_agree",
    "test_fit_losses.py::test_spike_time_objective_gradient_matches_central_differences",
    "test_fused.py::test_fused_gradients_are_those_of_the_scan_loop",
    "test_adjoint.py::test_fuzz_fused_adjoint_equals_scan_gradient",
    "test_adjoint.py::test_forward_mode_still_matches_the_scan",
    "test_adjoint.py::test_vmapped_starts_run_as_one_population",
    "test_output_atomic.py::test_cli_sigterm_leaves_no_temporary_folder",
    "test_simulate_family.py::test_float32_current_with_float64_params",
    "test_simulate_family.py::test_float32_params_run_in_float32_under_x64",
    "test_simulate_family.py::test_invalid_traced_params_raise_naming_the_field",
    "test_spike_times.py::test_spike_time_gradients_match_fd_dense_output",
    "test_spike_times.py::test_few_crossings_path_equals_full_hermite",
    "test_spike_times.py::test_spike_time_gradients_match_fd_exp_euler_hermite",
    "test_analysis_cycles.py::test_limit_cycle_matches_reference",
    "test_analysis_cli_plots.py::test_cli_bifurcation_writes_csv_and_png",
    "test_analysis_cli_plots.py::test_cli_fi_writes_csv_and_png",
    "test_cli.py::test_methods_and_rest_init",
    "test_cli_robust.py::test_default_tolerance_of_an_adaptive_method_runs_in_float32",
    "test_diffrax.py::test_short_pulse_is_not_stepped_over",
    "test_fit_losses.py::test_trace_objective_gradient_matches_central_differences",
    "test_fit_losses.py::test_checkpointed_gradient_equals_plain",
    "test_fused.py::test_fused_equals_scan_for_each_stimulus_kind",
    "test_jump_times.py::test_adaptive_solver_sees_every_pulse_late_in_a_run",
    "test_perf_regressions.py::test_gate_rates_derivatives_at_singular_and_extreme_voltages",
    "test_plot.py::test_matplotlib_is_imported_lazily",
    "test_rates.py::test_bernoulli_and_exprel_limits[float32]",
    "test_rates.py::test_no_nan_or_inf_in_wide_voltage_range[float32]",
    "test_simulate.py::test_grad_wrt_every_field_matches_central_differences",
    "test_simulate_accuracy.py::test_rk4_state_convergence_order_is_four",
    "test_simulate_accuracy.py::test_euler_spike_time_convergence_order",
    "test_simulate_accuracy.py::test_exp_euler_spike_time_convergence_order",
    "test_simulate_family.py::test_python_float_y0_follows_float32_params_and_array_y0_promotes",
    "test_simulate_family.py::test_valid_traced_params_run_and_differentiate",
    "test_simulate_family.py::test_new_t0_and_dt_do_not_recompile",
    "test_stimulus.py::test_noise_is_reproducible_and_has_the_right_statistics",
    "test_time_invariant.py::test_short_runs_with_a_varying_stimulus_locate_spikes_as_the_scan_loop",
    "test_analysis_hopf.py::test_hopf_points_match_reference",
    "test_analysis_cli_plots.py::test_plots_return_axes",
    "test_analysis_cycles.py::test_fi_curve_from_rest_issue_numbers",
    "test_analysis_cycles.py::test_fi_curve_brainpy_matches_reference",
    "test_analysis_equilibria.py::test_rest_gradient_wrt_gL_matches_fd",
    "test_analysis_equilibria.py::test_equilibria_finds_three_on_a_folded_iv_curve",
    "test_cli.py::test_entry_point_subprocess",
    "test_cli_robust.py::test_tolerance_beyond_float32_runs_in_float64",
    "test_cli_robust.py::test_spike_with_nan_time_in_a_diverged_run_gives_a_summary_not_an_index_error",
    "test_cli_robust.py::test_entry_point_negative_current_and_bad_seed",
    "test_diffrax.py::test_tsit5_reproduces_reference",
    "test_fit_losses.py::test_residuals_square_sum_equals_loss",
    "test_simulate_family.py::test_sharded_per_neuron_constant_stays_tabulated_once",
)


def pytest_collection_modifyitems(config, items):
    """Mark the tests listed in `SLOW` with ``slow``."""
    for item in items:
        path, _, name = item.nodeid.partition("::")
        file = path.rsplit("/", 1)[-1]
        test = f"{file}::{name.split('[', 1)[0]}"
        if file in SLOW or test in SLOW or f"{file}::{name}" in SLOW:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def float32():
    """Run the test body with x64 disabled (float32 arrays by default)."""
    with jax.enable_x64(False):
        yield


@pytest.fixture(params=["float32", "float64"])
def precision(request):
    """Run the test body once in float32 and once in float64; yields the dtype name."""
    with jax.enable_x64(request.param == "float64"):
        yield request.param


@pytest.fixture(params=["kernel", "scan"])
def backend(request):
    """Run the test once per `ExpEuler` backend: ``"kernel"`` (the fused CPU kernel, the CPU
    default) and ``"scan"`` (the `lax.scan` loop: GPUs, and wherever the kernel does not apply).
    Yields the name; ``backends.loop(backend)`` are the simulate keywords pinned to it."""
    from backends import kernel_available

    if request.param == "kernel" and not kernel_available():
        pytest.skip("no C++ compiler: no fused kernel")
    return request.param
