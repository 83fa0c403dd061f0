//! Login attempts per client address, in this instance's memory: the account lockout
//! stops guessing one password, this stops spraying one password over many accounts
//! (or unknown addresses) from one client. Each instance counts on its own, so N
//! instances allow N times the limit — enough to keep a flood from one client small.

use crate::error::AppError;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a failed attempt counts against its address.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Addresses remembered before the idle ones are forgotten.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Clone)]
pub struct LoginThrottle {
    /// Failed (or still running) attempts allowed per address within `WINDOW`; 0: no limit.
    limit: usize,
    attempts: Arc<Mutex<HashMap<IpAddr, VecDeque<Instant>>>>,
}

/// An attempt counted against its address until it turns out to be a success.
pub struct Attempt {
    throttle: LoginThrottle,
    address: Option<(IpAddr, Instant)>,
}

impl LoginThrottle {
    pub fn new(limit: usize) -> LoginThrottle {
        LoginThrottle {
            limit,
            attempts: Arc::default(),
        }
    }

    /// Counts an attempt from `address` before its password is checked (so parallel
    /// attempts cannot slip past the limit), or refuses it with 429 and Retry-After.
    pub fn begin(&self, address: Option<IpAddr>) -> Result<Attempt, AppError> {
        let (Some(address), true) = (address, self.limit > 0) else {
            return Ok(Attempt {
                throttle: self.clone(),
                address: None,
            });
        };
        let now = Instant::now();
        let mut attempts = self
            .attempts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if attempts.len() >= MAX_ADDRESSES {
            attempts.retain(|_, times| times.back().is_some_and(|t| now - *t < WINDOW));
        }
        let times = attempts.entry(address).or_default();
        while times.front().is_some_and(|t| now - *t >= WINDOW) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = times.front().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now - oldest);
            return Err(AppError::TooManyRequests {
                retry_after_secs: wait.as_secs().max(1) as i64,
            });
        }
        times.push_back(now);
        Ok(Attempt {
            throttle: self.clone(),
            address: Some((address, now)),
        })
    }
}

impl Attempt {
    /// The password was right: this attempt does not count against the address.
    pub fn succeeded(self) {
        let Some((address, at)) = self.address else {
            return;
        };
        let mut attempts = self
            .throttle
            .attempts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(times) = attempts.get_mut(&address) {
            if let Some(index) = times.iter().position(|t| *t == at) {
                times.remove(index);
            }
            if times.is_empty() {
                attempts.remove(&address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_limit_are_refused_and_successes_do_not_count() {
        let throttle = LoginThrottle::new(2);
        let here = Some(IpAddr::from([10, 0, 0, 1]));
        throttle.begin(here).expect("first").succeeded();
        let _failed = throttle.begin(here).expect("second");
        let _failed_again = throttle.begin(here).expect("third");
        match throttle.begin(here) {
            Err(AppError::TooManyRequests { retry_after_secs }) => {
                assert!((1..=600).contains(&retry_after_secs))
            }
            _ => panic!("expected 429"),
        }
        assert!(throttle.begin(Some(IpAddr::from([10, 0, 0, 2]))).is_ok());
        assert!(LoginThrottle::new(0).begin(here).is_ok());
    }
}
