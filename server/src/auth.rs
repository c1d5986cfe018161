//! Token signing and verification with `jsonwebtoken`: the HS256 secret (configured, or generated
//! and kept in the store) and an optional outside issuer's public key (RS256, ES256 or EdDSA).
//! The claims' meaning (expiry against a given time, board scope) is `tafel_protocol::claims`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use tafel_protocol::{Claims, ClaimsError, Role};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no token was given")]
    Missing,
    #[error("the token is malformed or its signature is wrong: {0}")]
    Invalid(String),
    #[error(transparent)]
    Claims(#[from] ClaimsError),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the public key {path}: {reason}")]
pub struct KeyError {
    path: String,
    reason: String,
}

/// An outside issuer's verification key and the algorithms it may sign with.
struct PublicKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

pub struct Keys {
    encoding: EncodingKey,
    hs256: DecodingKey,
    public: Option<PublicKey>,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Keys {
    pub fn new(secret: &str) -> Self {
        Keys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            hs256: DecodingKey::from_secret(secret.as_bytes()),
            public: None,
        }
    }

    /// Adds an outside issuer's PEM public key; its kind (RSA, EC P-256, Ed25519) sets the
    /// algorithms accepted with it.
    pub fn with_public_key_pem(mut self, path: &str, pem: &[u8]) -> Result<Self, KeyError> {
        let err = |reason: String| KeyError {
            path: path.to_owned(),
            reason,
        };
        let public = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            PublicKey {
                key,
                algorithms: vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
            }
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            PublicKey {
                key,
                algorithms: vec![Algorithm::ES256],
            }
        } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            PublicKey {
                key,
                algorithms: vec![Algorithm::EdDSA],
            }
        } else {
            return Err(err(
                "not an RSA, EC or Ed25519 public key in PEM form".into()
            ));
        };
        self.public = Some(public);
        Ok(self)
    }

    /// Verifies the signature and decodes the claims, then checks them against `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, AuthError> {
        let claims = self.decode(token)?;
        claims.check(now)?;
        Ok(claims)
    }

    /// Verifies the signature and decodes the claims, checking no times.
    fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let (key, algorithms) = if header.alg == Algorithm::HS256 {
            (&self.hs256, vec![Algorithm::HS256])
        } else {
            match &self.public {
                Some(p) if p.algorithms.contains(&header.alg) => (&p.key, p.algorithms.clone()),
                _ => {
                    return Err(AuthError::Invalid(format!(
                        "algorithm {:?} is not accepted",
                        header.alg
                    )))
                }
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        // Expiry and not-before are checked by `Claims::check` against the time we pass in.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = decode::<Claims>(token, key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        Ok(data.claims)
    }

    /// As `verify`, but a personal token that expired less than `grace` seconds ago is
    /// accepted too (joining again with the token kept on the device renews it). Invite tokens
    /// get no grace: an expired invite lets nobody in.
    pub fn verify_with_grace(
        &self,
        token: &str,
        now: u64,
        grace: u64,
    ) -> Result<Claims, AuthError> {
        let claims = self.decode(token)?;
        match claims.check(now) {
            Err(ClaimsError::Expired)
                if !claims.is_invite() && claims.exp.saturating_add(grace) > now =>
            {
                // Everything but the expiry must hold as it did while the token was valid.
                claims.check(claims.exp.saturating_sub(1))?;
                Ok(claims)
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(claims),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        // HS256 signing with a byte secret cannot fail.
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).unwrap_or_default()
    }

    /// Signs a new token for `sub` with the given role, board and lifetime.
    pub fn issue(
        &self,
        sub: &str,
        name: &str,
        role: Role,
        board: &str,
        ttl: Duration,
        now: u64,
    ) -> String {
        self.sign(&Claims {
            sub: sub.to_owned(),
            name: name.to_owned(),
            role,
            board: board.to_owned(),
            exp: now.saturating_add(ttl.as_secs()),
            iat: Some(now),
            nbf: None,
            inv: None,
        })
    }
}

/// Parses durations like `8h`, `30m`, `45s`, `2d` or a plain number of seconds.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 8h, 30m, 45s or 2d"))?;
    let per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use s, m, h or d")),
    };
    let secs = n
        .checked_mul(per_unit)
        .ok_or_else(|| format!("{s:?} is too long a duration"))?;
    if secs == 0 {
        return Err("a token lifetime must be longer than zero".into());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every expiry check and every issued `exp` counts from this clock: it is the wall clock
    /// in seconds (a clock stuck at 0 would make every token valid forever; cargo-mutants found
    /// no unit test that noticed).
    #[test]
    fn now_secs_is_the_wall_clock() {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let now = now_secs();
        assert!(now.abs_diff(wall) <= 2, "now_secs {now}, wall clock {wall}");
        assert!(now > 1_700_000_000, "now_secs {now} is not a current time");
    }

    const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIMhk5y1YdXGo5jpKLUJD9z+FONBqKwscF7wEZTUMaAiB\n-----END PRIVATE KEY-----\n";
    const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA++TU+PSf5G9yFYx1yUeCYjRqBPy1MIzqA4NCwTrORYg=\n-----END PUBLIC KEY-----\n";

    /// An outside issuer's token (Ed25519 here) verifies with its public key; a token whose
    /// header names an algorithm the key is not for is refused before any signature check,
    /// saying so (cargo-mutants: the algorithm guard in `decode` had no unit test).
    #[test]
    fn outside_issuer_tokens_verify_only_with_their_algorithm() {
        let keys = Keys::new("s3cret")
            .with_public_key_pem("ed.pem", ED_PUBLIC.as_bytes())
            .expect("an Ed25519 public key");
        let claims = Claims {
            sub: "p9".into(),
            name: "Buiten".into(),
            role: Role::Employer,
            board: "b1".into(),
            exp: 2000,
            iat: Some(1000),
            nbf: None,
            inv: None,
        };
        let private = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).expect("private key");
        let t = encode(&Header::new(Algorithm::EdDSA), &claims, &private).expect("sign");
        assert_eq!(keys.verify(&t, 1500).expect("EdDSA token").sub, "p9");
        // The same claims under an RS256 header: not an algorithm of this key.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        // base64url of {"alg":"RS256","typ":"JWT"}
        parts[0] = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9".into();
        let forged = parts.join(".");
        match keys.verify(&forged, 1500) {
            Err(AuthError::Invalid(why)) => assert!(why.contains("is not accepted"), "{why}"),
            other => panic!("an RS256 header on an Ed25519 key: {other:?}"),
        }
    }

    #[test]
    fn issued_tokens_verify_and_expire() {
        let keys = Keys::new("s3cret");
        let t = keys.issue(
            "p1",
            "Ans",
            Role::Union,
            "b1",
            Duration::from_secs(60),
            1000,
        );
        let c = keys.verify(&t, 1000).unwrap();
        assert_eq!(c.role, Role::Union);
        assert!(matches!(
            keys.verify(&t, 1060),
            Err(AuthError::Claims(ClaimsError::Expired))
        ));
    }

    #[test]
    fn wrong_secret_is_invalid() {
        let t = Keys::new("a").issue("p", "n", Role::Observer, "b", Duration::from_secs(60), 0);
        assert!(matches!(
            Keys::new("b").verify(&t, 1),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            Keys::new("a").verify("x.y.z", 1),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            Keys::new("a").verify("", 1),
            Err(AuthError::Missing)
        ));
    }

    #[test]
    fn recently_expired_personal_tokens_pass_with_grace_invites_do_not() {
        let keys = Keys::new("s3cret");
        let t = keys.issue(
            "p1",
            "Ans",
            Role::Employee,
            "b1",
            Duration::from_secs(60),
            1000,
        );
        // expired at 1060; a grace of 100 s reaches until 1160
        assert!(keys.verify(&t, 1100).is_err());
        assert_eq!(keys.verify_with_grace(&t, 1100, 100).unwrap().sub, "p1");
        assert!(matches!(
            keys.verify_with_grace(&t, 1161, 100),
            Err(AuthError::Claims(ClaimsError::Expired))
        ));
        let mut c = keys.verify(&t, 1000).unwrap();
        c.inv = Some("i1".into());
        let inv = keys.sign(&c);
        assert!(keys.verify_with_grace(&inv, 1059, 100).is_ok());
        assert!(matches!(
            keys.verify_with_grace(&inv, 1100, 100),
            Err(AuthError::Claims(ClaimsError::Expired))
        ));
        // a bad signature stays bad with any grace
        assert!(matches!(
            Keys::new("other").verify_with_grace(&t, 1100, 100),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn ttl_overflow_is_an_error_not_a_wrap() {
        assert!(parse_ttl("99999999999999999999s").is_err());
        assert!(parse_ttl("999999999999999999d").is_err());
        assert_eq!(parse_ttl("36500d"), Ok(Duration::from_secs(36500 * 86400)));
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert!(parse_ttl("8x").is_err());
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
