//! Payloads and header lists as PostgreSQL stores them: compressed with zstd and a fixed
//! dictionary before they are written, which takes an event's payload and its attempt's headers
//! to about a quarter of their size in the table and in the WAL (docs/ARCHITECTURE.md, "What
//! an event costs on PostgreSQL").
//!
//! A packed value is one byte naming its dictionary's version, then a zstd frame that records
//! its own size. A dictionary never changes once shipped: a new one takes the next version,
//! and every version stays readable. Version 1's, in `dictionaries/`, are raw text: for
//! payloads, the property names of every payload schema (docs/schemas), one object's per line,
//! each as `"name":`; for headers, as the log's JSON, common response headers, then the headers
//! a delivery sends (with every event type's name).

use std::sync::LazyLock;

use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::sql::Corrupt;

/// The compression level. The 2 KiB `build.submitted` example packs to 522 bytes in about 13 µs
/// at 5, to 518 in 19 µs at 6, to 557 in 10 µs at 3 (zstd's default); higher levels gain a few
/// bytes for several times the CPU (timed on this project's machines, release build, a
/// thread's contexts reused).
const LEVEL: i32 = 5;

/// What a value is, which picks its dictionary.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Packed {
    /// An event's payload: the dictionary holds the payload schemas' property names.
    Payload,
    /// An attempt's request or response headers, as `[[name, value], ...]` JSON: the
    /// dictionary holds the headers a delivery sends and common response headers.
    Headers,
}

/// The version new values are packed with.
const CURRENT: u8 = 1;

static PAYLOAD_1: &[u8] = include_bytes!("dictionaries/payload.1.txt");
static HEADERS_1: &[u8] = include_bytes!("dictionaries/headers.1.txt");

// Digested once: digesting a dictionary costs more than packing a payload with it.
static ENCODERS: LazyLock<[EncoderDictionary<'static>; 2]> = LazyLock::new(|| {
    [
        EncoderDictionary::copy(PAYLOAD_1, LEVEL),
        EncoderDictionary::copy(HEADERS_1, LEVEL),
    ]
});
static DECODERS: LazyLock<[DecoderDictionary<'static>; 2]> = LazyLock::new(|| {
    [
        DecoderDictionary::copy(PAYLOAD_1),
        DecoderDictionary::copy(HEADERS_1),
    ]
});

/// A thread's compression and decompression contexts, one per dictionary, each made when the
/// thread first needs it (a thread that only reads the log never makes a compressor): making
/// one costs more than packing a payload with it (it sizes and clears its tables), so each
/// thread keeps its own, sized for the values it has packed.
#[derive(Default)]
struct Contexts {
    compressors: [Option<zstd::bulk::Compressor<'static>>; 2],
    decompressors: [Option<zstd::bulk::Decompressor<'static>>; 2],
}

thread_local! {
    static CONTEXTS: std::cell::RefCell<Contexts> = std::cell::RefCell::default();
}

/// The largest value unpacking accepts: a frame claiming more is corrupt (the intake refuses
/// payloads far smaller).
const MAX_UNPACKED: u64 = 1 << 30;

impl Packed {
    fn index(self) -> usize {
        match self {
            Packed::Payload => 0,
            Packed::Headers => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Packed::Payload => "payload",
            Packed::Headers => "headers",
        }
    }

    /// `bytes`, packed.
    pub(crate) fn pack(self, bytes: &[u8]) -> Vec<u8> {
        // The version byte, then the frame written straight after it.
        let mut packed = vec![0; 1 + zstd::zstd_safe::compress_bound(bytes.len())];
        packed[0] = CURRENT;
        let written = CONTEXTS.with_borrow_mut(|contexts| {
            contexts.compressors[self.index()]
                .get_or_insert_with(|| {
                    zstd::bulk::Compressor::with_prepared_dictionary(&ENCODERS[self.index()])
                        .expect("a compression context can be made")
                })
                .compress_to_buffer(bytes, &mut packed[1..])
                .expect("a buffer of zstd's bound for the input has room for its frame")
        });
        packed.truncate(1 + written);
        packed
    }

    /// The bytes `packed` holds.
    pub(crate) fn unpack(self, packed: &[u8]) -> Result<Vec<u8>, Corrupt> {
        let corrupt = |why: String| Corrupt(format!("packed {}: {why}", self.name()));
        let (&version, frame) = packed
            .split_first()
            .ok_or_else(|| corrupt("empty".to_owned()))?;
        if version != CURRENT {
            return Err(corrupt(format!("unknown dictionary version {version}")));
        }
        let size = match zstd::zstd_safe::get_frame_content_size(frame) {
            Ok(Some(size)) if size <= MAX_UNPACKED => size,
            Ok(Some(size)) => return Err(corrupt(format!("claims {size} bytes"))),
            Ok(None) | Err(_) => return Err(corrupt("no zstd frame with its size".to_owned())),
        };
        CONTEXTS
            .with_borrow_mut(|contexts| {
                contexts.decompressors[self.index()]
                    .get_or_insert_with(|| {
                        zstd::bulk::Decompressor::with_prepared_dictionary(&DECODERS[self.index()])
                            .expect("a decompression context can be made")
                    })
                    .decompress(frame, size as usize)
            })
            .map_err(|e| corrupt(e.to_string()))
    }

    /// The text `packed` holds (headers are JSON).
    pub(crate) fn unpack_text(self, packed: &[u8]) -> Result<String, Corrupt> {
        String::from_utf8(self.unpack(packed)?)
            .map_err(|_| Corrupt(format!("packed {}: not UTF-8", self.name())))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Packed;

    #[test]
    fn a_payload_packs_to_about_a_quarter_and_back() {
        let body = djinn_hook_payload::example_payload(
            djinn_hook_payload::EventType::BuildSubmitted,
            djinn_hook_payload::DEFAULT_API_SERVER,
        )
        .to_body();
        let packed = Packed::Payload.pack(&body);
        assert!(
            packed.len() * 3 < body.len(),
            "{} of {}",
            packed.len(),
            body.len()
        );
        assert_eq!(Packed::Payload.unpack(&packed).unwrap(), body);
    }

    #[test]
    fn damage_is_an_error_naming_the_value() {
        let mut packed = Packed::Headers.pack(br#"[["Accept","*/*"]]"#);
        packed[0] = 9;
        let err = Packed::Headers.unpack(&packed).unwrap_err().0;
        assert!(
            err.contains("headers") && err.contains("version 9"),
            "{err}"
        );
        assert!(Packed::Payload.unpack(&[]).is_err());
        assert!(Packed::Payload.unpack(&[1, 0, 1, 2, 3]).is_err());
    }

    proptest! {
        #[test]
        fn anything_packed_unpacks_to_itself(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            for kind in [Packed::Payload, Packed::Headers] {
                prop_assert_eq!(kind.unpack(&kind.pack(&bytes)).unwrap(), bytes.clone());
            }
        }
    }
}
