//! User ids as keyed hashes.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How user ids are kept.
pub(crate) enum UserIds {
    /// `u:` + the first 16 bytes of HMAC-SHA256(key, id), in hex.
    Hashed([u8; 32]),
    /// As given (the builder opted out of hashing).
    Raw,
}

impl UserIds {
    /// A random per-process key.
    pub(crate) fn random() -> Self {
        let mut key = [0_u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No OS randomness: fall back to the std hasher's per-process random keys.
            use std::hash::{BuildHasher, RandomState};
            for (i, chunk) in key.chunks_mut(8).enumerate() {
                let word = RandomState::new().hash_one(i);
                chunk.copy_from_slice(&word.to_le_bytes());
            }
        }
        UserIds::Hashed(key)
    }

    /// A key derived from the bytes the builder was given.
    pub(crate) fn keyed(secret: &[u8]) -> Self {
        use sha2::Digest;
        UserIds::Hashed(Sha256::digest(secret).into())
    }

    pub(crate) fn key_of(&self, raw: &str) -> Arc<str> {
        match self {
            UserIds::Raw => Arc::from(raw),
            UserIds::Hashed(key) => {
                let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
                    return Arc::from("u:unhashable");
                };
                mac.update(raw.as_bytes());
                let digest = mac.finalize().into_bytes();
                let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
                Arc::from(format!("u:{hex}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_and_stable() {
        let a = UserIds::keyed(b"secret");
        let b = UserIds::keyed(b"other");
        assert_eq!(a.key_of("alice"), a.key_of("alice"));
        assert_ne!(a.key_of("alice"), a.key_of("bob"));
        assert_ne!(a.key_of("alice"), b.key_of("alice"));
        assert!(a.key_of("alice").starts_with("u:"));
        assert!(!a.key_of("alice").contains("alice"));
        assert_eq!(&*UserIds::Raw.key_of("alice"), "alice");
        assert_ne!(UserIds::random().key_of("x"), UserIds::random().key_of("x"));
    }
}
