#!/usr/bin/env bash
# Regenerate docs/benchmarks.md and its plots from the result files of the current revision (sections in this
# order), with earlier revisions' files under "History". Run from the repository root with the dev venv active.
set -euo pipefail
R=benchmarks/results
python benchmarks/report.py \
    $R/peers_cpu_base_flash_run{1,2,3,4,5}.json $R/peers_cpu_base_session10.json $R/peers_cpu_large_flash.json \
    $R/runtime_base_flash.json $R/runtime_base_1thread_flash.json $R/runtime_base_memory_flash.json \
    $R/runtime_large.json $R/runtime_large_memory.json \
    $R/ab_window_base_flash_24s.json $R/ab_window_bundled_flash_24s.json $R/ab_window_bundled_v2_v3_24s.json $R/ab_window_base_session5.json $R/ab_window_base_session5_1thread_10s.json $R/conv_matmul_base_spans.json \
    $R/window_settings_base_spans.json $R/cuda_base_h100_attention.json $R/cuda_base_h200_capture.json \
    $R/cuda_base_h200_runtime_path.json $R/cuda_base_h100_attention_round1.json $R/cuda_base_h100_runtime_path_round1.json \
    $R/cuda_base_h100.json $R/cuda_base_h100_levers.json \
    $R/window_accuracy_bundled.json $R/conv_matmul_large_channels_last.json $R/denormals_bundled.json \
    $R/decoder_speed_vs_base_int8.json $R/decoder_speed_vs_base_int8_noisy.json \
    $R/beam_loops_bundled_cathy.json $R/beam_loops_medium_fb_384_cathy.json \
    $R/accuracy_small_fb_v7_bundled.json $R/accuracy_small_fb_v7_bundled_keywords_unused.json \
    $R/accuracy_small_fb_v7_bundled_keywords_unused_trimmed.json \
    $R/match_small_fb_v7_bundled.json $R/phrase_rejection_small_fb_v7_bundled.json \
    $R/accuracy_small_fb_avg56.json $R/accuracy_small_fb_avg56_keywords_unused.json \
    $R/accuracy_small_fb_avg56_keywords_unused_trimmed.json $R/match_small_fb_avg56.json $R/phrase_rejection_small_fb_avg56.json \
    $R/accuracy_small_fb_v6_bundled.json $R/accuracy_small_fb_v6_bundled_keywords_unused.json \
    $R/match_small_fb_v6_bundled.json $R/phrase_rejection_small_fb_v6_bundled.json \
    $R/accuracy_medium_fb_384_r5.json $R/accuracy_medium_fb_384_r5_keywords.json $R/match_medium_fb_384_r5.json \
    $R/accuracy_medium_fb_384_r5_matmul_int8.json \
    $R/accuracy_medium_fb_384_r4.json $R/accuracy_medium_fb_384_r4_keywords.json $R/match_medium_fb_384_r4.json \
    $R/accuracy_small_fb_v6_same_lm_as_r4.json $R/accuracy_medium_fb_384_r4_matmul_int8.json \
    $R/pause_cuts_bundled_test.json $R/pause_cuts_bundled_dev.json $R/endpoints_bundled_test_gap1.json $R/endpoints_bundled_dev_gap1.json \
    $R/endpoints_bundled_test_gap0.json $R/trim_silence/silence_margins_test.json $R/trim_silence/silence_margins_test_trimmed.json \
    $R/trim_silence/silence_margins_dev.json $R/trim_silence/silence_margins_dev_trimmed.json $R/silence_margins_bundled_dev.json \
    $R/accuracy_small_fb_v5_bundled.json $R/accuracy_small_fb_v5_bundled_keywords_unused_tuned_weights.json \
    $R/accuracy_small_fb_v5_bundled_keywords_unused.json \
    $R/match_small_fb_v5_bundled.json $R/phrase_rejection_small_fb_v5_bundled.json \
    $R/accuracy_small_fb_v4_bundled.json $R/accuracy_small_fb_v4_bundled_keywords_unused.json \
    $R/match_small_fb_v4_bundled.json $R/match_medium_fb_384.json \
    $R/long_beam_bundled_session12.json $R/long_beam_bundled_session11.json $R/stream_latency_bundled.json $R/lm_memory_bundled.json \
    $R/phrase_rejection_small_fb_v4_bundled.json $R/phrase_rejection_medium_fb_384.json \
    $R/accuracy_small_fb_v3_bundled.json $R/accuracy_small_fb_v3_bundled_keywords_unused.json \
    $R/accuracy_small_fb_v2_bundled_lm.json $R/accuracy_small_fb_v2_bundled_lm_keywords_unused.json \
    $R/accuracy_small_fb_v2_bundled.json $R/accuracy_medium_fb_384.json $R/accuracy_small_fb_v2.json $R/accuracy_small_fb_v2_matmul_int8.json \
    $R/accuracy_small_fb_v2_pyctcdecode.json $R/serve_bundled_sample_beam.json $R/serve_bundled_sample_greedy.json \
    $R/serve_bundled_model.json \
    --history $R/long_beam_bundled.json $R/peers_cpu_base_spans_run{1,2,3,4,5}.json $R/peers_cpu_large.json \
    $R/runtime_base_spans.json $R/runtime_base_1thread_spans.json $R/runtime_base_memory_spans.json \
    $R/peers_cpu_large_run0.json $R/peers_cpu_base_mha.json $R/peers_cpu_base_mha_run{2,3,4}.json $R/peers_cpu_base_gather_run_{a,b,c}.json \
    $R/peers_cpu_base_channels_last.json $R/peers_cpu_base_channels_last_run{2,3}.json \
    $R/runtime_base_channels_last.json $R/runtime_base_1thread_channels_last.json \
    $R/runtime_base_memory_channels_last.json $R/window_settings_base.json $R/conv_matmul_base_channels_last.json \
    $R/accuracy_small_fb_v2_bundled_mha.json $R/peers_cpu_base_conv_int8.json $R/peers_cpu_base_quiet.json \
    $R/runtime_base_quiet.json $R/runtime_base_memory.json $R/runtime_base_1thread.json \
    $R/conv_matmul_base_quiet2.json $R/accuracy_small_fb_v1.json $R/accuracy_small_fb_v1_conv_int8.json \
    $R/accuracy_small_fb_v1_pyctcdecode.json \
    --intro benchmarks/report_intro.md --out docs/benchmarks.md --plots $R/plots
