//! Random strings from a cryptographically secure generator.
//!
//! `rand`'s thread-local generator is a ChaCha12 CSPRNG seeded from the operating system and
//! reseeded periodically; drawing from it costs no system call, where reading the OS generator
//! for every character cost one `getrandom` each (a tenth of a request's time in profiles).

use rand::Rng as _;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A string of `len` characters from `[0-9a-z]`, uniformly distributed, as Magento's
/// `Math\Random::getRandomString` produces for consumer keys, secrets and tokens.
///
/// ```
/// let s = integration_host::crypto::random_string(32);
/// assert_eq!(s.len(), 32);
/// assert!(s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
/// ```
pub fn random_string(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A 32-character `[0-9a-z]` token (about 165 bits of entropy).
pub fn random_token() -> String {
    random_string(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_of_the_alphabet_appears_and_nothing_else() {
        let mut seen = [0usize; 36];
        for _ in 0..400 {
            for b in random_token().bytes() {
                let i = ALPHABET.iter().position(|&a| a == b).expect("in alphabet");
                seen[i] += 1;
            }
        }
        // 12 800 draws over 36 symbols: about 356 each; a biased or broken generator shows.
        assert!(seen.iter().all(|&n| (250..470).contains(&n)), "{seen:?}");
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(random_token(), random_token());
    }
}
