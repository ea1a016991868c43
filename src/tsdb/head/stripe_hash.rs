//! The hash used for a stripe's `series id → series` map.
//!
//! Series ids are handed out in creation order and spread round-robin over
//! the stripes, so within one stripe they are `id = slot * STRIPES + stripe`.
//! Appends arrive in much the same order as the series were created (one
//! scrape or remote_write request after another), so a hash that keeps
//! neighbouring slots in neighbouring buckets makes consecutive lookups touch
//! neighbouring cache lines instead of random ones: the lookup was the
//! largest cache-miss cost in the append profile.
//!
//! The map (hashbrown under `std::collections::HashMap`) picks the bucket
//! from the low bits of the hash and a 7-bit tag from the top bits. The low
//! bits carry the slot unchanged; the top 7 bits carry a multiplicative mix
//! of the id so that tags still tell neighbouring ids apart during probing.

use std::hash::{BuildHasher, Hasher};

/// Builds [`StripeIdHasher`]s; stateless, so every map hashes alike.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct StripeIdHash;

impl BuildHasher for StripeIdHash {
    type Hasher = StripeIdHasher;

    fn build_hasher(&self) -> StripeIdHasher {
        StripeIdHasher(0)
    }
}

/// Hashes one `u32` series id as described in the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct StripeIdHasher(u64);

impl Hasher for StripeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u32` keys are hashed; anything else still gets a usable hash.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, id: u32) {
        let slot = u64::from(id) / super::STRIPES as u64;
        let tag = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57;
        self.0 = slot | (tag << 57);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(id: u32) -> u64 {
        StripeIdHash.hash_one(id)
    }

    #[test]
    fn neighbouring_ids_of_a_stripe_get_neighbouring_low_bits() {
        let stripes = super::super::STRIPES as u32;
        let low = |h: u64| h & ((1 << 57) - 1);
        for id in [5u32, 1000, 77_777] {
            assert_eq!(low(hash(id + stripes)), low(hash(id)) + 1);
        }
    }

    #[test]
    fn tags_differ_between_neighbours() {
        let stripes = super::super::STRIPES as u32;
        let distinct: std::collections::HashSet<u64> = (0..64u32).map(|i| hash(3 + i * stripes) >> 57).collect();
        assert!(distinct.len() > 32, "only {} distinct tags among 64 neighbours", distinct.len());
    }

    #[test]
    fn map_with_this_hash_finds_every_id() {
        let mut map: std::collections::HashMap<u32, u32, StripeIdHash> = Default::default();
        for id in (1..200_000u32).step_by(128) {
            map.insert(id, id * 2);
        }
        for id in (1..200_000u32).step_by(128) {
            assert_eq!(map.get(&id), Some(&(id * 2)));
        }
        assert_eq!(map.get(&2), None);
    }
}
