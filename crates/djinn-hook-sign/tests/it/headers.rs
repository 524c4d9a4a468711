//! The header names are the wire format's: the original's and the Standard Webhooks spec's.

use djinn_hook_sign::headers;

#[test]
fn header_names_match_the_original_and_the_standard_webhooks_spec() {
    assert_eq!(headers::EVENT, "X-Djinn-CI-Event");
    assert_eq!(headers::HOOK_ID, "X-Djinn-CI-Hook-ID");
    assert_eq!(headers::DELIVERY, "X-Djinn-CI-Delivery");
    assert_eq!(headers::SIGNATURE, "X-Djinn-CI-Signature");
    assert_eq!(headers::WEBHOOK_ID, "webhook-id");
    assert_eq!(headers::WEBHOOK_TIMESTAMP, "webhook-timestamp");
    assert_eq!(headers::WEBHOOK_SIGNATURE, "webhook-signature");
}
