//! [`RunId`]: a unique, random-looking id for each run.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one run. Displays as a UUID (version 4 layout).
///
/// Ids are unique within a process (each mixes a counter through a
/// bijection) and differ across processes (the mix is seeded once from the
/// randomly keyed std hasher), without a system call per run. They are not
/// secrets: do not use them as tokens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(u128);

impl RunId {
    /// A new id, different from every other id of this process.
    pub fn new() -> Self {
        static SEED: LazyLock<(u64, u64)> = LazyLock::new(|| {
            let keys = RandomState::new();
            let mut a = keys.build_hasher();
            a.write_u64(0x5eed);
            let mut b = keys.build_hasher();
            b.write_u64(!0x5eed);
            (a.finish(), b.finish())
        });
        let count = next_count();
        let (high_seed, low_seed) = *SEED;
        // The low 62 bits are a bijection of the count, so distinct counts
        // give distinct ids; the version and variant bits sit outside them.
        let low = mix62(count.wrapping_add(low_seed));
        let raw = (u128::from(mix(count ^ high_seed)) << 64) | u128::from(low);
        // Version 4, variant 1 bits, so tools that parse UUIDs accept it.
        let raw = (raw & !(0xf << 76)) | (0x4 << 76) | (0x2 << 62);
        RunId(raw)
    }

    /// The id's 128 bits.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The id written as `text` (36 characters, as [`Display`](fmt::Display)
    /// gives them: hex digits with dashes after the 8th, 12th, 16th and
    /// 20th); `None` for any other text. Never panics.
    ///
    /// ```
    /// use stroma_core::RunId;
    ///
    /// let id = RunId::new();
    /// assert_eq!(RunId::parse(&id.to_string()), Some(id));
    /// assert_eq!(RunId::parse("not an id"), None);
    /// ```
    pub fn parse(text: &str) -> Option<RunId> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut raw: u128 = 0;
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if *byte != b'-' {
                    return None;
                }
                continue;
            }
            let digit = (*byte as char).to_digit(16)?;
            raw = (raw << 4) | u128::from(digit);
        }
        Some(RunId(raw))
    }
}

impl std::str::FromStr for RunId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RunId::parse(text).ok_or_else(|| format!("`{text}` is not a run id"))
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
        let mut at = 0;
        for (i, byte) in self.0.to_be_bytes().into_iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0xf)];
            at += 2;
        }
        IdText(out)
    }
}

/// A number no other call in this process gets. Each thread takes a block
/// of numbers from a shared counter and hands them out itself, so most runs
/// touch no shared atomic.
fn next_count() -> u64 {
    const BLOCK: u64 = 1 << 16;
    static TAKEN: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        // The next number of this thread's block, and the block's end.
        static BLOCK_LEFT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    BLOCK_LEFT.with(|left| {
        let (mut next, mut end) = left.get();
        if next == end {
            next = TAKEN.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        left.set((next + 1, end));
        next
    })
}

/// A bijection on the low 62 bits of `z` (the rest are dropped): the same
/// steps as [`mix`], each one-to-one on 62-bit values.
fn mix62(z: u64) -> u64 {
    const MASK: u64 = (1 << 62) - 1;
    let mut z = z.wrapping_add(0x9e37_79b9_7f4a_7c15) & MASK;
    z = ((z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9)) & MASK;
    z = ((z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb)) & MASK;
    z ^ (z >> 31)
}

/// splitmix64's finalizer: a bijection on `u64` that scatters its input's bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,40}") {
            let _ = RunId::parse(&text);
        }

        #[test]
        fn every_id_reads_back_from_its_text(raw in any::<u128>()) {
            let id = RunId(raw);
            prop_assert_eq!(RunId::parse(&id.to_string()), Some(id));
            prop_assert_eq!(RunId::parse(&id.to_string().to_uppercase()), Some(id));
        }
    }

    #[test]
    fn near_misses_are_refused() {
        let id = RunId::new().to_string();
        assert_eq!(RunId::parse(&id[1..]), None);
        assert_eq!(RunId::parse(&id.replace('-', "_")), None);
        assert_eq!(RunId::parse(&format!("{}g", &id[..35])), None);
        assert_eq!(RunId::parse(&id.replacen('-', "0", 1)), None);
    }

    #[test]
    fn ids_from_many_threads_are_unique() {
        let ids: HashSet<RunId> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..20_000).map(|_| RunId::new()).collect::<Vec<_>>()))
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("no panic"))
                .collect()
        });
        assert_eq!(ids.len(), 80_000);
    }

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
