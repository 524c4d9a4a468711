//! Integration tests of djinn-hook-store: one conformance suite run on both
//! backends (real SQLite files; throw-away databases on a real PostgreSQL
//! server), and tests of what only one backend has.

mod breakers;
mod claim;
mod faults;
mod files;
mod flows;
mod headers;
mod hooks;
mod idempotency;
mod leases;
mod liveness;
mod log;
mod notify;
mod pg;
mod props;
mod queue_test;
mod race;
mod recovery;
mod schema;
mod secrets;
mod support;

/// Runs each listed test function (`fn(&Backend)`) once per backend:
/// `sqlite::<module>::<test>` and `postgres::<module>::<test>`. The PostgreSQL
/// ones are built as ignored, with the reason shown by `cargo test`, unless
/// `DJINN_TEST_POSTGRES_URL` was set when the tests were built (build.rs).
macro_rules! conformance {
    ($($module:ident { $($test:ident),* $(,)? })*) => {
        mod sqlite {
            $(mod $module {
                $(#[test]
                fn $test() {
                    crate::$module::$test(&crate::support::Backend::Sqlite);
                })*
            })*
        }
        mod postgres {
            $(mod $module {
                $(#[test]
                #[cfg_attr(
                    not(postgres_tests),
                    ignore = "not run: DJINN_TEST_POSTGRES_URL was unset when the tests were built, or the `postgres` feature off"
                )]
                fn $test() {
                    crate::$module::$test(&crate::support::postgres());
                })*
            })*
        }
    };
}

conformance! {
    breakers {
        the_first_opening_stands_and_one_taker_gets_the_probe,
        a_probe_whose_taker_vanished_is_free_once_its_time_is_up,
        stores_taking_a_probe_at_once_get_it_once,
        a_webhook_shows_the_shared_breaker,
        pruning_forgets_a_breaker_nobody_probed_for_a_day,
    }
    claim {
        a_small_backlog_is_not_queued_behind_a_big_one,
        claims_smaller_than_the_webhook_count_take_turns,
        a_webhook_at_its_cap_gets_nothing_until_leases_end,
        a_webhook_found_at_its_cap_is_passed_over_until_a_lease_of_its_ends,
        a_put_off_task_keeps_its_attempt_and_its_event,
        a_throttled_attempt_is_recorded_but_not_counted,
        a_webhooks_adaptive_limit_and_in_flight_tasks_are_shown,
        a_deferred_webhooks_due_tasks_wait_uncounted_and_leased_ones_stay,
        a_success_clears_the_recorded_breaker,
        limits_are_validated_set_and_reset,
        caps_hold_across_stores_claiming_at_once,
    }
    flows {
        delivered_task_is_finished_and_logged,
        retry_then_fail_then_retry_now,
        lease_expiry_gives_the_task_back_and_a_late_completion_is_still_logged,
        a_late_completion_after_the_task_was_delivered_is_still_logged,
        a_batch_with_one_bad_namespace_stores_nothing,
        a_completion_batch_is_one_transaction,
        disabling_a_hook_fails_its_tasks_and_reenabling_clears_it,
        a_hook_deactivated_in_flight_keeps_the_delivery_and_fails_the_retry,
        redelivery_resends_the_recorded_body_with_the_same_event_id,
        an_event_outlives_pruning_while_a_delivery_refers_to_it,
        pruning_an_event_takes_its_failed_task,
        deleting_a_hook_takes_its_tasks_and_log,
        bodies_are_capped_and_marked_truncated,
        claim_respects_limit_and_due_order,
        failing_since_follows_the_order_of_a_batch,
        the_log_does_not_store_the_payload_twice,
    }
    hooks {
        ensure_namespace_creates_ancestors_once,
        bad_namespace_names_are_refused,
        create_validates_every_field,
        payload_url_is_unique_within_its_namespace_only,
        create_in_unknown_namespace_names_it,
        create_get_list_update_delete,
        only_active_subscribed_hooks_of_the_namespace_match,
        tls_verification_is_on_unless_turned_off_for_an_https_url,
        payload_urls_are_what_the_http_client_can_send,
    }
    idempotency {
        a_key_used_again_for_the_same_event_answers_as_first_and_stores_nothing,
        a_key_used_again_for_another_event_is_refused_naming_it,
        keys_belong_to_their_namespace,
        one_key_twice_in_a_batch_stores_one_event_and_a_conflict_stores_nothing,
        an_invalid_key_is_refused_and_stores_nothing,
        an_expired_key_is_free_again_and_pruned,
        stores_racing_with_one_key_store_one_event,
    }
    liveness {
        a_live_process_keeps_its_claims_a_dead_ones_come_back_at_once,
        a_claim_looks_for_dead_processes_by_itself,
        a_restarted_process_takes_back_as_it_registers,
        retiring_hands_back_every_claim_and_releasing_uncounts_it,
    }
    leases {
        eight_claimers_never_share_a_task,
        a_task_completed_twice_in_one_batch_takes_the_first_outcome,
    }
    log {
        pages_of_25_newest_first,
        failed_filter_and_json_shape,
        last_response_of_many_hooks_in_one_query,
        success_rates_count_only_the_window,
        prune_removes_old_rows_and_keeps_recent_ones,
        prune_by_an_age_beyond_any_date_prunes_nothing_and_does_not_panic,
    }
    race {
        two_connections_never_claim_the_same_task,
        one_store_is_shared_by_threads,
    }
    secrets {
        secret_round_trips_through_a_claim_only,
        each_write_uses_a_fresh_nonce,
        wrong_key_is_a_clear_error_when_decrypting,
        removed_secret_claims_as_none_and_key_debug_is_redacted,
        credentials_in_a_payload_url_are_never_in_debug,
        a_rotation_hands_out_both_secrets_until_its_overlap_ends,
        a_rotation_is_validated_and_its_ended_overlap_deleted_by_prune,
        an_invalid_whsec_secret_is_refused_at_create_update_and_rotation,
    }
    notify {
        a_disabled_webhook_and_its_failed_task_are_reported,
        the_notification_webhook_never_reports_itself,
        nothing_is_queued_without_a_notification_webhook,
        the_reserved_namespace_is_refused_to_users,
        a_breaker_open_too_long_is_reported_once,
        the_intake_trace_reaches_the_claim,
        processes_starting_at_once_share_one_notification_webhook,
    }
    headers {
        headers_are_sealed_shown_by_name_and_claimed_with_their_values,
        an_update_replaces_the_set_and_a_masked_value_keeps_the_stored_one,
        headers_that_would_override_the_delivery_or_are_malformed_are_refused,
    }
    recovery {
        a_recovery_queues_each_failed_event_once_even_run_twice,
        a_failed_recovery_can_be_recovered_again_and_batches_add_up,
        the_range_bounds_and_test_events_are_respected,
        an_inactive_or_unknown_webhook_is_refused,
        a_recovered_backlog_does_not_crowd_out_other_webhooks,
    }
    queue_test {
        queues_one_leased_task_for_that_hook_only_with_its_secret,
        an_inactive_or_unsubscribed_hook_is_tested_anyway,
        an_unclaimed_test_comes_back_when_its_lease_runs_out,
        an_unknown_hook_stores_nothing_and_a_wrong_key_is_reported,
        test_deliveries_are_marked_and_filtered_and_their_redeliveries_too,
    }
}
