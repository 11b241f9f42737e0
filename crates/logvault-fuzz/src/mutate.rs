//! Structured mutations of bytes: the damage a disk, a bad copy or a hostile sender does.
//!
//! A [`Script`] is a list of [`Mutation`]s applied in order. Scripts come from proptest (which
//! generates and shrinks them) or are decoded from raw fuzzer bytes ([`Script::decode`]), so a
//! coverage-guided fuzzer explores damage to a fixture it could not build itself.

/// One change to a byte string. Positions are taken modulo the length, so every mutation
/// applies to any input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Flips bit `bit % 8` of the byte at `at`.
    FlipBit {
        /// Position.
        at: usize,
        /// Bit.
        bit: u8,
    },
    /// Sets the byte at `at`.
    SetByte {
        /// Position.
        at: usize,
        /// New value.
        value: u8,
    },
    /// Cuts the bytes from `at` on (a torn write, a short copy).
    Truncate {
        /// Where the bytes end now.
        at: usize,
    },
    /// Inserts bytes at `at`.
    Insert {
        /// Position.
        at: usize,
        /// What is inserted.
        bytes: Vec<u8>,
    },
    /// Removes `len` bytes from `at`.
    Remove {
        /// Position.
        at: usize,
        /// How many.
        len: usize,
    },
    /// Copies `len` bytes from `from` over the bytes at `to` (a misplaced sector).
    CopyWithin {
        /// Source.
        from: usize,
        /// Destination.
        to: usize,
        /// How many.
        len: usize,
    },
    /// Overwrites `len` bytes from `at` with `value` (zero-filled or erased blocks).
    Fill {
        /// Position.
        at: usize,
        /// How many.
        len: usize,
        /// The byte written.
        value: u8,
    },
    /// Overwrites 8 bytes at `at` with a little-endian integer (a length or count field set to
    /// a boundary value: 0, 2^31, u32::MAX, u64::MAX).
    SetU64 {
        /// Position.
        at: usize,
        /// The value.
        value: u64,
    },
}

/// Values a length or count field is set to.
pub const INTERESTING: [u64; 8] = [
    0,
    1,
    0x7f,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

impl Mutation {
    /// Applies the mutation to `data`.
    pub fn apply(&self, data: &mut Vec<u8>) {
        let n = data.len();
        let pos = |at: usize| if n == 0 { 0 } else { at % n };
        match self {
            Self::FlipBit { at, bit } if n > 0 => data[pos(*at)] ^= 1 << (bit % 8),
            Self::SetByte { at, value } if n > 0 => data[pos(*at)] = *value,
            Self::Truncate { at } => data.truncate(if n == 0 { 0 } else { at % (n + 1) }),
            Self::Insert { at, bytes } => {
                let at = if n == 0 { 0 } else { at % (n + 1) };
                data.splice(at..at, bytes.iter().copied());
            }
            Self::Remove { at, len } if n > 0 => {
                let at = pos(*at);
                let end = at.saturating_add(*len).min(n);
                data.drain(at..end);
            }
            Self::CopyWithin { from, to, len } if n > 0 => {
                let (from, to) = (pos(*from), pos(*to));
                let len = (*len).min(n - from).min(n - to);
                data.copy_within(from..from + len, to);
            }
            Self::Fill { at, len, value } if n > 0 => {
                let at = pos(*at);
                let end = at.saturating_add(*len).min(n);
                data[at..end].fill(*value);
            }
            Self::SetU64 { at, value } if n > 0 => {
                let at = pos(*at);
                let bytes = value.to_le_bytes();
                let len = bytes.len().min(n - at);
                data[at..at + len].copy_from_slice(&bytes[..len]);
            }
            _ => {}
        }
    }
}

/// A list of mutations, and which of several files they apply to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Which file of a fixture is damaged (modulo the number of files).
    pub file: usize,
    /// The mutations, in order.
    pub mutations: Vec<Mutation>,
}

impl Script {
    /// Applies every mutation to `data`.
    pub fn apply(&self, data: &mut Vec<u8>) {
        for m in &self.mutations {
            m.apply(data);
        }
    }

    /// Decodes a script from raw fuzzer bytes: a file selector byte, then operations of a tag
    /// byte and little-endian arguments. Bytes that do not make a whole operation are ignored,
    /// so every input decodes to some script.
    pub fn decode(bytes: &[u8]) -> Self {
        let mut r = Reader(bytes);
        let file = usize::from(r.u8().unwrap_or(0));
        let mut mutations = Vec::new();
        while let Some(tag) = r.u8() {
            let m = match tag % 8 {
                0 => r.u32().zip(r.u8()).map(|(at, bit)| Mutation::FlipBit {
                    at: at as usize,
                    bit,
                }),
                1 => r.u32().zip(r.u8()).map(|(at, value)| Mutation::SetByte {
                    at: at as usize,
                    value,
                }),
                2 => r.u32().map(|at| Mutation::Truncate { at: at as usize }),
                3 => r.u32().zip(r.u8()).and_then(|(at, len)| {
                    r.take(usize::from(len)).map(|b| Mutation::Insert {
                        at: at as usize,
                        bytes: b.to_vec(),
                    })
                }),
                4 => r.u32().zip(r.u16()).map(|(at, len)| Mutation::Remove {
                    at: at as usize,
                    len: usize::from(len),
                }),
                5 => r.u32().zip(r.u32()).zip(r.u16()).map(|((from, to), len)| {
                    Mutation::CopyWithin {
                        from: from as usize,
                        to: to as usize,
                        len: usize::from(len),
                    }
                }),
                6 => r
                    .u32()
                    .zip(r.u16())
                    .zip(r.u8())
                    .map(|((at, len), value)| Mutation::Fill {
                        at: at as usize,
                        len: usize::from(len),
                        value,
                    }),
                _ => r.u32().zip(r.u8()).map(|(at, i)| Mutation::SetU64 {
                    at: at as usize,
                    value: INTERESTING[usize::from(i) % INTERESTING.len()],
                }),
            };
            match m {
                Some(m) => mutations.push(m),
                None => break,
            }
        }
        Self { file, mutations }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_apply_to_any_length() {
        for len in [0usize, 1, 7, 100] {
            let data: Vec<u8> = (0..len as u8).collect();
            for m in [
                Mutation::FlipBit { at: 1000, bit: 9 },
                Mutation::Truncate { at: 3 },
                Mutation::Insert {
                    at: 2,
                    bytes: vec![1, 2],
                },
                Mutation::Remove { at: 5, len: 1000 },
                Mutation::CopyWithin {
                    from: 90,
                    to: 3,
                    len: 50,
                },
                Mutation::Fill {
                    at: 4,
                    len: 3,
                    value: 0,
                },
                Mutation::SetU64 {
                    at: 98,
                    value: u64::MAX,
                },
            ] {
                let mut d = data.clone();
                m.apply(&mut d);
            }
        }
        let mut d = vec![0u8; 4];
        Mutation::FlipBit { at: 5, bit: 2 }.apply(&mut d);
        assert_eq!(d, [0, 4, 0, 0]);
    }

    #[test]
    fn scripts_decode_from_any_bytes() {
        let s = Script::decode(&[3, 0, 1, 0, 0, 0, 5, 2, 9, 0, 0, 0]);
        assert_eq!(s.file, 3);
        assert_eq!(
            s.mutations,
            vec![
                Mutation::FlipBit { at: 1, bit: 5 },
                Mutation::Truncate { at: 9 }
            ]
        );
        assert_eq!(Script::decode(&[]), Script::default());
    }
}
