//! [`RunId`]: a unique, random-looking id for each run.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one run. Displays as a UUID (version 4 layout).
///
/// Ids are unique within a process (a counter is part of them) and
/// unpredictable across processes (the rest comes from the randomly keyed
/// std hasher), without a system call per run.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(u128);

impl RunId {
    /// A new id, different from every other id of this process.
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let keys = RandomState::new();
        let mut high = keys.build_hasher();
        high.write_u64(count);
        let mut low = keys.build_hasher();
        low.write_u64(!count);
        let raw = (u128::from(high.finish()) << 64) | u128::from(low.finish() ^ count);
        // Version 4, variant 1 bits, so tools that parse UUIDs accept it.
        let raw = (raw & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        RunId(raw)
    }

    /// The id's 128 bits.
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

impl RunId {
    /// The id as text, in one allocation of exactly its length.
    pub fn to_text(self) -> String {
        String::from(self.as_text().as_str())
    }

    /// The id's 36 characters, formatted without the `fmt` machinery: runs
    /// format their id once each, so this is on every run's path.
    fn as_text(self) -> IdText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut nibble = 0;
        for (i, byte) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            *byte = HEX[((self.0 >> (124 - 4 * nibble)) & 0xf) as usize];
            nibble += 1;
        }
        IdText(out)
    }
}

/// A run id's text, on the stack.
struct IdText([u8; 36]);

impl IdText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits and dashes are ASCII")
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_text().as_str())
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_uuid_shaped() {
        let ids: HashSet<RunId> = (0..10_000).map(|_| RunId::new()).collect();
        assert_eq!(ids.len(), 10_000);
        let text = RunId::new().to_string();
        let groups: Vec<usize> = text.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&text[14..15], "4", "version nibble in {text}");
        assert!(
            matches!(&text[19..20], "8" | "9" | "a" | "b"),
            "variant in {text}"
        );
    }
}
