//! Signed, expiring links for patients (no account): HMAC-SHA256 over a small payload
//! with the application's secret key, hex-encoded. Hex rather than base64url: a random
//! base64 string can spell a word (`mdma`, `dosing`) that a patient's email must never
//! show, and hex cannot (none of those words is made of 0-9a-f).
//!
//! `<payload>.<signature>` where payload = `v1.<purpose>.<patient>.<session or 0>.<expiry unix>`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// View one session, answer yes/no, and reach email preferences.
    Session,
    /// Email preferences only (mails not about one session).
    Preferences,
    /// Accept or decline a peer-circle invitation; `session_id` carries the invitation id.
    PeerInvitation,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Session => "s",
            Purpose::Preferences => "p",
            Purpose::PeerInvitation => "i",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub purpose: Purpose,
    pub patient_id: i64,
    pub session_id: Option<i64>,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not a token we issued (tampered, truncated, another key).
    Invalid,
    /// Ours, but past its expiry.
    Expired,
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(payload);
    mac
}

pub fn sign(key: &[u8], claims: &LinkClaims) -> String {
    let payload = format!(
        "v1.{}.{}.{}.{}",
        claims.purpose.as_str(),
        claims.patient_id,
        claims.session_id.unwrap_or(0),
        claims.expires_at
    );
    let signature = mac(key, payload.as_bytes()).finalize().into_bytes();
    format!(
        "{}.{}",
        hex::encode(payload.as_bytes()),
        hex::encode(signature)
    )
}

pub fn verify(key: &[u8], token: &str, now: DateTime<Utc>) -> Result<LinkClaims, LinkError> {
    // Only the canonical form we issue (lower-case hex) is accepted: an upper-cased digit
    // decodes to the same bytes, and a link that still works after an edit is not one
    // a patient can trust to be tamper-evident.
    let canonical = token
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'.');
    if token.len() > 512 || !canonical {
        return Err(LinkError::Invalid);
    }
    let (payload, signature) = token.split_once('.').ok_or(LinkError::Invalid)?;
    let payload = hex::decode(payload).map_err(|_| LinkError::Invalid)?;
    let signature = hex::decode(signature).map_err(|_| LinkError::Invalid)?;
    mac(key, &payload)
        .verify_slice(&signature)
        .map_err(|_| LinkError::Invalid)?;
    let text = std::str::from_utf8(&payload).map_err(|_| LinkError::Invalid)?;
    let parts: Vec<&str> = text.split('.').collect();
    let [version, purpose, patient, session, expiry] = parts.as_slice() else {
        return Err(LinkError::Invalid);
    };
    if *version != "v1" {
        return Err(LinkError::Invalid);
    }
    let purpose = match *purpose {
        "s" => Purpose::Session,
        "p" => Purpose::Preferences,
        "i" => Purpose::PeerInvitation,
        _ => return Err(LinkError::Invalid),
    };
    let patient_id: i64 = patient.parse().map_err(|_| LinkError::Invalid)?;
    let session: i64 = session.parse().map_err(|_| LinkError::Invalid)?;
    let expires_at: i64 = expiry.parse().map_err(|_| LinkError::Invalid)?;
    if now.timestamp() > expires_at {
        return Err(LinkError::Expired);
    }
    Ok(LinkClaims {
        purpose,
        patient_id,
        session_id: (session != 0).then_some(session),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(expires_at: i64) -> LinkClaims {
        LinkClaims {
            purpose: Purpose::Session,
            patient_id: 42,
            session_id: Some(7),
            expires_at,
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let now = Utc::now();
        let token = sign(KEY, &claims(now.timestamp() + 60));
        assert_eq!(verify(KEY, &token, now), Ok(claims(now.timestamp() + 60)));
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(verify(KEY, &token, later), Err(LinkError::Expired));
    }

    #[test]
    fn a_tampered_link_is_refused() {
        let now = Utc::now();
        let token = sign(KEY, &claims(now.timestamp() + 60));
        let forged_payload = hex::encode(format!("v1.s.43.7.{}", now.timestamp() + 60));
        let signature = token.split_once('.').expect("two parts").1;
        let forged = format!("{forged_payload}.{signature}");
        assert_eq!(verify(KEY, &forged, now), Err(LinkError::Invalid));
        assert_eq!(
            verify(b"another key entirely, 32 bytes!!", &token, now),
            Err(LinkError::Invalid)
        );
        assert_eq!(verify(KEY, "garbage", now), Err(LinkError::Invalid));
    }

    #[test]
    fn an_upper_cased_link_is_refused_although_it_decodes_the_same() {
        let now = Utc::now();
        let token = sign(KEY, &claims(now.timestamp() + 60));
        assert_eq!(
            verify(KEY, &token.to_uppercase(), now),
            Err(LinkError::Invalid)
        );
    }
}
