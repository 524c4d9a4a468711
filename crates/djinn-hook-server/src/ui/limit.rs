//! [`SignInLimit`]: failed sign-ins limited per client address and in all, so tokens cannot be
//! guessed at speed through the sign-in form (the API's bearer tokens are long random strings
//! too, but the form is where a person types one).
//!
//! Two token buckets: each client address may fail [`PER_CLIENT`]'s burst, then one more every
//! few seconds; everyone together [`ALL`]'s. Every attempt takes from both before its token is
//! checked (so attempts sent at once cannot all slip through), and one that signs in is given
//! back: only failures count. While either is empty a sign-in is answered 429 without the token
//! being checked at all (else guessing would go on, only answered late). A few dozen
//! lines instead of the `governor` crate, whose keyed limiter brings a concurrent map, a clock
//! crate and a lock crate for two counters.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many failures a bucket holds, and how fast it refills.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    burst: f64,
    per_second: f64,
}

/// One address (an IPv6 one by its /64, what one host usually holds): 10 failures, then one
/// every 6 s.
pub(crate) const PER_CLIENT: Rate = Rate {
    burst: 10.0,
    per_second: 1.0 / 6.0,
};

/// Every address together: 60 failures, then one a second.
pub(crate) const ALL: Rate = Rate {
    burst: 60.0,
    per_second: 1.0,
};

/// The most addresses remembered; beyond it, a new address has only the shared bucket.
const MAX_CLIENTS: usize = 10_000;

/// The limiter, shared by every sign-in request of a server.
#[derive(Debug)]
pub(crate) struct SignInLimit {
    per_client: Rate,
    all: Rate,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    all: Option<Bucket>,
    /// By address; `None` for a request whose address is unknown (no socket, as in tests).
    by_client: HashMap<Option<IpAddr>, Bucket>,
}

/// Failures still allowed, as of `at`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    left: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            left: rate.burst,
            at: now,
        }
    }

    /// The bucket as of `now`: refilled for the time since, never above the burst.
    fn at(self, rate: Rate, now: Instant) -> Bucket {
        let since = now.saturating_duration_since(self.at).as_secs_f64();
        Bucket {
            left: (self.left + since * rate.per_second).min(rate.burst),
            at: now,
        }
    }

    /// `delta` more attempts left, within 0 and the burst.
    fn add(self, delta: f64, rate: Rate) -> Bucket {
        Bucket {
            left: (self.left + delta).clamp(0.0, rate.burst),
            ..self
        }
    }

    /// How long until one more attempt is allowed (zero: now).
    fn wait(self, rate: Rate) -> Duration {
        if self.left >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.left) / rate.per_second)
        }
    }
}

/// The address a bucket is kept for: an IPv4-mapped IPv6 address as IPv4, an IPv6 one by its
/// /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Default for SignInLimit {
    fn default() -> SignInLimit {
        SignInLimit::new(PER_CLIENT, ALL)
    }
}

impl SignInLimit {
    pub(crate) fn new(per_client: Rate, all: Rate) -> SignInLimit {
        SignInLimit {
            per_client,
            all,
            buckets: Mutex::default(),
        }
    }

    /// Takes one sign-in attempt for `client`, or `Err(retry_after)` (whole seconds, at least
    /// one) while it, or everyone, has none left. Taken before the token is checked, so that
    /// attempts sent at once cannot all pass; one that signs in is given back.
    pub(crate) fn take(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let per_client = self.per_client;
        let key = client.map(client_key);
        let all = buckets
            .all
            .unwrap_or(Bucket::full(self.all, now))
            .at(self.all, now);
        let own = buckets
            .by_client
            .get(&key)
            .map_or(Bucket::full(per_client, now), |b| b.at(per_client, now));
        let wait = all.wait(self.all).max(own.wait(per_client));
        if wait > Duration::ZERO {
            // Rounded up, less a nanosecond's worth of float error: 3.0000000000000004 s is 3.
            return Err(Duration::from_secs(
                ((wait.as_secs_f64() - 1e-9).ceil() as u64).max(1),
            ));
        }
        buckets.all = Some(all.add(-1.0, self.all));
        // A bucket that has refilled says no more than an absent one: forget it.
        buckets
            .by_client
            .retain(|_, b| b.at(per_client, now).left < per_client.burst);
        if buckets.by_client.len() < MAX_CLIENTS || buckets.by_client.contains_key(&key) {
            buckets.by_client.insert(key, own.add(-1.0, per_client));
        }
        Ok(())
    }

    /// Gives back the attempt `client` took: it signed in.
    pub(crate) fn give_back(&self, client: Option<IpAddr>, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (all, per_client) = (self.all, self.per_client);
        buckets.all = buckets.all.map(|b| b.at(all, now).add(1.0, all));
        if let Some(own) = buckets.by_client.get_mut(&client.map(client_key)) {
            *own = own.at(per_client, now).add(1.0, per_client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn each_address_has_its_burst_then_waits_for_the_refill() {
        let limit = SignInLimit::default();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(limit.take(ip("192.0.2.1"), t0), Ok(()));
        }
        assert_eq!(limit.take(ip("192.0.2.1"), t0), Err(Duration::from_secs(6)));
        assert_eq!(limit.take(ip("192.0.2.2"), t0), Ok(()), "another address");
        assert_eq!(
            limit.take(ip("192.0.2.1"), t0 + Duration::from_secs(3)),
            Err(Duration::from_secs(3))
        );
        assert_eq!(
            limit.take(ip("192.0.2.1"), t0 + Duration::from_secs(6)),
            Ok(())
        );
        // One IPv6 host's /64 is one address; a mapped IPv4 address is that address.
        for _ in 0..10 {
            limit.take(ip("2001:db8::1"), t0).unwrap();
        }
        assert!(limit.take(ip("2001:db8::ffff"), t0).is_err());
        assert_eq!(limit.take(ip("2001:db8:0:1::1"), t0), Ok(()));
        assert!(
            limit
                .take(ip("::ffff:192.0.2.1"), t0 + Duration::from_secs(6))
                .is_err()
        );
    }

    #[test]
    fn an_attempt_that_signs_in_is_given_back() {
        let limit = SignInLimit::default();
        let t0 = Instant::now();
        for _ in 0..100 {
            limit.take(ip("192.0.2.1"), t0).unwrap();
            limit.give_back(ip("192.0.2.1"), t0);
        }
        assert_eq!(limit.take(ip("192.0.2.1"), t0), Ok(()));
    }

    #[test]
    fn every_address_together_has_a_limit_too() {
        let limit = SignInLimit::default();
        let t0 = Instant::now();
        for n in 0..60u8 {
            limit
                .take(Some(IpAddr::from([198, 51, 100, n])), t0)
                .unwrap();
        }
        assert_eq!(
            limit.take(ip("203.0.113.9"), t0),
            Err(Duration::from_secs(1))
        );
        assert_eq!(
            limit.take(ip("203.0.113.9"), t0 + Duration::from_secs(1)),
            Ok(())
        );
    }
}
