//! Token checks (`server/src/auth.rs`): the two cases the cargo-mutants run of that file found
//! without a test (docs/testing.md, "Mutation testing").

use std::time::Duration;

use tafel_protocol::{ClaimsError, Role};
use tafel_server::auth::{parse_ttl, AuthError, Keys};

#[test]
fn the_grace_for_an_expired_token_ends_exactly_grace_seconds_after_its_expiry() {
    let keys = Keys::new("s3cret");
    // Expires at 1060; a grace of 100 s takes it up to, not including, 1160.
    let t = keys.issue(
        "p1",
        "Ans",
        Role::Employee,
        "b1",
        Duration::from_secs(60),
        1000,
    );
    assert_eq!(
        keys.verify_with_grace(&t, 1159, 100)
            .expect("one second before the grace ends")
            .sub,
        "p1"
    );
    assert!(matches!(
        keys.verify_with_grace(&t, 1160, 100),
        Err(AuthError::Claims(ClaimsError::Expired))
    ));
}

#[test]
fn token_lifetimes_take_seconds_minutes_hours_and_days() {
    assert_eq!(parse_ttl("45s"), Ok(Duration::from_secs(45)));
    assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(30 * 60)));
    assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
    assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(2 * 86400)));
}
