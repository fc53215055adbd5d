//! The random stream of one sample, derived from `(seed, epoch, index)` alone.
//!
//! Why not one generator shared by a loader: then a sample's draw depends on which thread
//! or batch got to it first. Here each sample owns a ChaCha stream keyed by the three
//! numbers, so the augmented data is the same whatever the thread count or visiting order.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator type every transform draws from.
pub type SampleRng = ChaCha8Rng;

/// Separates this crate's streams from any other ChaCha use of the same three numbers.
const DOMAIN: [u8; 8] = *b"segkitAG";

/// The generator of sample `index` in `epoch` under `seed`.
///
/// The ChaCha key is the three numbers themselves (plus a domain tag): ChaCha is a
/// pseudo-random function of its key, so distinct triples give independent streams and no
/// extra hash is needed.
///
/// ```
/// use rand::Rng;
/// let a: u64 = segkit_augment::sample_rng(0, 1, 2).gen();
/// let b: u64 = segkit_augment::sample_rng(0, 1, 2).gen();
/// let c: u64 = segkit_augment::sample_rng(0, 2, 2).gen();
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// ```
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> SampleRng {
    let mut key = [0u8; 32];
    key[0..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    key[16..24].copy_from_slice(&index.to_le_bytes());
    key[24..32].copy_from_slice(&DOMAIN);
    ChaCha8Rng::from_seed(key)
}
