//! Server-chosen ids: a prefix, the creation time in base 36 and random characters, so ids are
//! short, unique without coordination, and roughly time-ordered.

use rand::Rng;

pub fn generate_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let mut millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let mut time = Vec::new();
    while millis > 0 {
        time.push(ALPHABET[(millis % 36) as usize]);
        millis /= 36;
    }
    time.reverse();
    let random: String = (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}-{}{random}", String::from_utf8_lossy(&time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = generate_id("m");
        let b = generate_id("m");
        assert_ne!(a, b);
        assert!(a.starts_with("m-"));
        assert!(scoreline_core::MatchId::parse(a).is_ok());
    }
}
